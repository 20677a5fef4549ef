/** The calling process's effective capabilities, from /proc/self/status (CapEff). */
import fs from "node:fs";

export const CAP_KILL = 5;
export const CAP_NET_ADMIN = 12;
export const CAP_SYS_PTRACE = 19;
export const CAP_SYS_ADMIN = 21;
export const CAP_PERFMON = 38;
export const CAP_BPF = 39;

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

/** The identity map the host's (initial) user namespace has: every uid to itself. */
function isInitialUidMap(text: string): boolean {
  const lines = text.trim().split("\n");
  if (lines.length !== 1) return false;
  const [inside, outside, count] = lines[0]!.trim().split(/\s+/).map(Number);
  return inside === 0 && outside === 0 && count === 4294967295;
}

/**
 * Inside a user namespace other than the host's (`unshare --user`, rootless containers) CapEff
 * shows every capability, but they count only over what that namespace owns: not over the
 * host's processes, nor over network namespaces it did not create. A message about a missing
 * capability carries this note there; elsewhere it is empty.
 */
export function userNamespaceNote(uidMapText?: string): string {
  let text = uidMapText;
  if (text === undefined) {
    try {
      text = fs.readFileSync("/proc/self/uid_map", "utf8");
    } catch {
      return "";
    }
  }
  return isInitialUidMap(text) ? "" : "; this process is in a user namespace, whose capabilities do not count outside it";
}
