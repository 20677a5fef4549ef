/** The calling process's effective capabilities, from /proc/self/status (CapEff). */
import fs from "node:fs";

export const CAP_KILL = 5;
export const CAP_NET_ADMIN = 12;
export const CAP_SYS_PTRACE = 19;

export function parseCapEff(status: string): bigint | null {
  const m = status.match(/^CapEff:\s*([0-9a-fA-F]+)$/m);
  return m ? BigInt(`0x${m[1]}`) : null;
}

export function hasCapability(cap: number, statusText?: string): boolean {
  let text = statusText;
  if (text === undefined) {
    try {
      text = fs.readFileSync("/proc/self/status", "utf8");
    } catch {
      return (process.getuid?.() ?? 1) === 0;
    }
  }
  const eff = parseCapEff(text);
  if (eff === null) return (process.getuid?.() ?? 1) === 0;
  return ((eff >> BigInt(cap)) & 1n) === 1n;
}
