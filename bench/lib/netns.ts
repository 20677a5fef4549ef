// The benchmark's private network namespace: created once, always removed.
import { existsSync, readlinkSync, readdirSync, statSync } from "node:fs";
import { mustRun, run } from "./proc.ts";

export const NS_PREFIX = "sw-bench-";

export function netnsPath(name: string): string {
  return `/run/netns/${name}`;
}

export async function createNetns(name: string): Promise<void> {
  await mustRun(["ip", "netns", "add", name], 15_000);
  await mustRun(["ip", "-n", name, "link", "set", "lo", "up"], 15_000);
}

/** Remove the namespace; never throws. Returns an error text or null. */
export async function deleteNetns(name: string): Promise<string | null> {
  if (!existsSync(netnsPath(name))) return null;
  const r = await run(["ip", "netns", "del", name], 15_000);
  if (r.ok || !existsSync(netnsPath(name))) return null;
  return r.stderr.trim() || `ip netns del ${name}: exit ${r.exitCode ?? r.signal}`;
}

/** Synchronous variant for process exit handlers. */
export function deleteNetnsSync(name: string): void {
  if (!existsSync(netnsPath(name))) return;
  try {
    Bun.spawnSync({ cmd: ["ip", "netns", "del", name], stdout: "ignore", stderr: "ignore", timeout: 15_000 });
  } catch {
    // nothing more can be done while exiting
  }
}

/** Namespaces left by earlier benchmark runs whose process is gone (e.g. after kill -9). */
export function staleNamespaces(): string[] {
  let names: string[];
  try {
    names = readdirSync("/run/netns");
  } catch {
    return [];
  }
  return names.filter((n) => {
    const m = new RegExp(`^${NS_PREFIX}(\\d+)(?:-[a-z]+)?$`).exec(n);
    return m !== null && !existsSync(`/proc/${m[1]}`);
  });
}

/** True when this process is in the named namespace (/run/netns/<name>). */
export function inNetns(name: string): boolean {
  try {
    const m = /^net:\[(\d+)\]$/.exec(readlinkSync("/proc/self/ns/net"));
    return m !== null && BigInt(m[1]!) === statSync(netnsPath(name), { bigint: true }).ino;
  } catch {
    return false;
  }
}
