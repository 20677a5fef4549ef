/**
 * The pure helpers a rule can call (through the "sockwarden" module): plain values in, plain
 * values out. Bad input throws, which the rule sees as an ordinary exception.
 */
import { isLoopback, isPrivate, parseCidr, type CidrMatcher } from "../net/address.ts";
import { serviceName } from "../net/services.ts";
import { globToRegExp } from "../filter/endpoint-filter.ts";

export function hostHelpers() {
  const cidrs = new Map<string, CidrMatcher>();
  const globs = new Map<string, RegExp>();
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
    glob(pattern: unknown, text: unknown): boolean {
      const key = String(pattern).slice(0, 1000);
      let re = globs.get(key);
      if (!re) {
        re = globToRegExp(key);
        if (globs.size > 1000) globs.clear();
        globs.set(key, re);
      }
      return re.test(String(text));
    },
  };
}
