/**
 * The pure helpers a rule can call (through the "sockwarden" module): plain values in, plain
 * values out. Bad input throws, which the rule sees as an ordinary exception.
 */
import { isLoopback, isPrivate, parseCidr, type CidrMatcher } from "../net/address.ts";
import { serviceName } from "../net/services.ts";

export function hostHelpers() {
  const cidrs = new Map<string, CidrMatcher>();
  return {
    inCidr(address: unknown, cidr: unknown): boolean {
      const key = String(cidr);
      let m = cidrs.get(key);
      if (!m) {
        m = parseCidr(key);
        if (cidrs.size > 1000) cidrs.clear();
        cidrs.set(key, m);
      }
      return m.matches(String(address));
    },
    isPrivate: (address: unknown) => isPrivate(String(address)),
    isLoopback: (address: unknown) => isLoopback(String(address)),
    portName(port: unknown, protocol: unknown): string | null {
      const p = Number(port);
      if (!Number.isInteger(p) || p < 0 || p > 65535) return null;
      return serviceName(p, protocol === "udp" ? "udp" : "tcp");
    },
    glob: (pattern: unknown, text: unknown) => wildcardMatch(String(pattern).slice(0, 1000).toLowerCase(), String(text).toLowerCase()),
  };
}

/** Steps one glob call may take; past it the call throws instead of holding the host up. */
const GLOB_STEPS = 20_000_000;

/**
 * `*` and `?` against text, case-insensitive, whole text. Not a regular expression: a rule's
 * pattern runs in the host, outside the sandbox's time budget, and backtracking over patterns
 * such as `*a*a*a*...b` would hang it. This walk retries only from the last `*`, so it is at
 * most (text length x pattern length) steps, and it gives up past GLOB_STEPS.
 */
export function wildcardMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let star = -1;
  let resume = 0;
  let steps = 0;
  while (t < text.length) {
    if (++steps > GLOB_STEPS) throw new RangeError("glob: pattern and text too long to match");
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
