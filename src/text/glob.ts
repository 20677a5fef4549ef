/**
 * Shell-style wildcards as every part of sockwarden reads them: `*` any run, `?` one character,
 * everything else itself; case-insensitive, and the whole text must match. Process filters
 * (`--process`), protected process names and rules' `glob()` all use this one reading.
 *
 * No imports: it sits at the bottom with the model types, so every layer can use it.
 */

export interface GlobOptions {
  /**
   * Steps one match may take; past it the match throws a RangeError instead of holding the
   * caller up. For patterns and texts that arrive from untrusted code at any length.
   */
  maxSteps?: number;
}

/**
 * The pattern, lower-cased once, as a test over texts. Not a regular expression: backtracking
 * over patterns such as `*a*a*a*...b` would hang. This walk retries only from the last `*`, so
 * one match is at most (text length x pattern length) steps.
 */
export function globMatcher(pattern: string, options: GlobOptions = {}): (text: string) => boolean {
  const lower = pattern.toLowerCase();
  const maxSteps = options.maxSteps ?? Infinity;
  return (text) => wildcardMatch(lower, text.toLowerCase(), maxSteps);
}

function wildcardMatch(pattern: string, text: string, maxSteps: number): boolean {
  let p = 0;
  let t = 0;
  let star = -1;
  let resume = 0;
  let steps = 0;
  while (t < text.length) {
    if (++steps > maxSteps) throw new RangeError("glob: pattern and text too long to match");
    const c = pattern.charCodeAt(p);
    if (p < pattern.length && c !== 42 && (c === 63 || c === text.charCodeAt(t))) {
      p++;
      t++;
    } else if (p < pattern.length && c === 42) {
      star = p++;
      resume = t;
    } else if (star >= 0) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (pattern.charCodeAt(p) === 42) p++;
  return p === pattern.length;
}
