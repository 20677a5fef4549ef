/**
 * The one rule for text that leaves for a person or a log line: characters that steer a terminal
 * or a log reader instead of being read are shown as escapes. Process names, command lines,
 * paths, user and host names and rules' texts are set by whoever runs a process, answers a
 * reverse lookup or writes a rule; printed raw, an ESC clears or retitles the terminal, a
 * newline splits one table row or log record into two, and a bidi override shows a line in an
 * order other than the bytes'.
 *
 * Shown as escapes:
 *   C0 U+0000–U+001F, DEL U+007F, C1 U+0080–U+009F   \xNN   (two lower-case hex digits)
 *   U+061C, U+200E, U+200F, U+2028–U+202E,           \u{NNNN}
 *   U+2066–U+2069, U+FEFF, lone surrogates
 *   the backslash itself                              \\
 * Doubling the backslash makes the shown form unambiguous: a name that really is the four
 * characters `\x1b` shows as `\\x1b`, never as what an ESC shows as.
 *
 * JSON output does not go through this: it carries the exact text, JSON-escaped.
 *
 * No imports: it sits at the bottom with the model types, so every layer can use it.
 */

/** Characters that steer instead of being read; `u` so that a paired surrogate is one character. */
const CONTROL = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff\ud800-\udfff]/u;
/** The same, and the backslash. */
const UNSAFE = /[\\\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff\ud800-\udfff]/u;
const UNSAFE_ALL = new RegExp(UNSAFE.source, "gu");

/** `text` with control, line-breaking and bidi characters and backslashes shown as escapes. */
export function escapeControl(text: string): string {
  // Most text has nothing to escape: answer without building a new string.
  if (!UNSAFE.test(text)) return text;
  return text.replace(UNSAFE_ALL, escapeOne);
}

/** Whether `text` holds a character that escapeControl shows as an escape, the backslash aside. */
export function hasControlCharacters(text: string): boolean {
  return CONTROL.test(text);
}

function escapeOne(c: string): string {
  if (c === "\\") return "\\\\";
  const code = c.charCodeAt(0);
  if (code <= 0x9f) return `\\x${code.toString(16).padStart(2, "0")}`;
  return `\\u{${code.toString(16).padStart(4, "0")}}`;
}
