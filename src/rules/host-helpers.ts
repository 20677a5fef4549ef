/**
 * The pure helpers a rule can call (through the "sockwarden" module): plain values in, plain
 * values out. Bad input throws, which the rule sees as an ordinary exception.
 */
import { isLoopback, isPrivate, parseCidr, type CidrMatcher } from "../net/address.ts";
import { serviceName } from "../net/services.ts";
import { globMatcher } from "../text/glob.ts";

/** Steps one glob call may take; past it the call throws instead of holding the host up. */
const GLOB_STEPS = 20_000_000;

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
    // A rule's pattern runs in the host, outside the sandbox's time budget: the pattern is cut
    // short and the match gives up past GLOB_STEPS.
    glob: (pattern: unknown, text: unknown) => globMatcher(String(pattern).slice(0, 1000), { maxSteps: GLOB_STEPS })(String(text)),
  };
}

