// The namespaces suite's outer half: the benchmark's own namespace plus K namespaces that hold the
// connections, all created here and all deleted here in every case (success, error,
// SIGINT/SIGTERM/SIGHUP, time budget), and a re-run of bench/namespaces.ts inside the own one.
import { existsSync, readdirSync, statSync } from "node:fs";
import { SignalRelay } from "./measuring-half.ts";
import { NS_PREFIX, netnsPath } from "./netns.ts";
import { run } from "./proc.ts";
import { sleepUnref } from "./helper.ts";

const log = (msg: string): void => {
  process.stderr.write(`[bench:namespaces] ${msg}\n`);
};

export interface NamespaceSet {
  /** Where the measuring half runs and every measured command starts. */
  own: string;
  /** The namespaces that hold connections, in loop order. */
  targets: string[];
}

/** sw-bench-<pid>-ns (own) and sw-bench-<pid>-ns01 … -nsK (targets). */
export function namespaceNames(pid: number, count: number): NamespaceSet {
  const own = `${NS_PREFIX}${pid}-ns`;
  const width = Math.max(2, String(count).length);
  const targets = Array.from({ length: count }, (_, i) => `${own}${String(i + 1).padStart(width, "0")}`);
  return { own, targets };
}

/** Namespaces of this suite left by a run whose process is gone (e.g. after kill -9). */
export function staleSuiteNamespaces(): string[] {
  let names: string[];
  try {
    names = readdirSync("/run/netns");
  } catch {
    return [];
  }
  const re = new RegExp(`^${NS_PREFIX}(\\d+)-ns\\d*$`);
  return names.filter((n) => {
    const m = re.exec(n);
    return m !== null && !existsSync(`/proc/${m[1]}`);
  });
}

/** Network namespaces in use on the host: named ones and those processes live in. */
export function hostNamespaceCount(): number {
  const inodes = new Set<bigint>();
  const add = (p: string): void => {
    try {
      inodes.add(statSync(p, { bigint: true }).ino);
    } catch {
      // gone meanwhile
    }
  };
  try {
    for (const n of readdirSync("/run/netns")) add(`/run/netns/${n}`);
  } catch {
    // no named namespaces
  }
  for (const pid of readdirSync("/proc")) if (/^\d+$/.test(pid)) add(`/proc/${pid}/ns/net`);
  return inodes.size;
}

async function createOne(name: string): Promise<void> {
  const add = await run(["ip", "netns", "add", name], 15_000);
  if (!add.ok) throw new Error(`ip netns add ${name}: ${add.stderr.trim() || `exit ${add.exitCode ?? add.signal}`}`);
  const up = await run(["ip", "-n", name, "link", "set", "lo", "up"], 15_000);
  if (!up.ok) throw new Error(`ip -n ${name} link set lo up: ${up.stderr.trim() || `exit ${up.exitCode ?? up.signal}`}`);
}

/** PIDs of processes living in any of the named namespaces. */
function pidsInside(names: string[]): number[] {
  const inodes = new Set<bigint>();
  for (const n of names) {
    try {
      inodes.add(statSync(netnsPath(n), { bigint: true }).ino);
    } catch {
      // already deleted
    }
  }
  if (inodes.size === 0) return [];
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (inodes.has(statSync(`/proc/${entry}/ns/net`, { bigint: true }).ino)) pids.push(Number(entry));
    } catch {
      // exited meanwhile, or not readable
    }
  }
  return pids;
}

/**
 * Before deleting: the holders end by themselves once the measuring half is gone (their stdin
 * closes); give them a moment, then end whatever the run left inside its own namespaces.
 */
async function emptyNamespaces(names: string[]): Promise<void> {
  const end = performance.now() + 5_000;
  let pids = pidsInside(names);
  while (pids.length && performance.now() < end) {
    await sleepUnref(100);
    pids = pidsInside(names);
  }
  if (!pids.length) return;
  log(`ending ${pids.length} process(es) still inside the benchmark namespaces: ${pids.join(" ")}`);
  for (const sig of ["SIGTERM", "SIGKILL"] as const) {
    for (const pid of pids) {
      try {
        process.kill(pid, sig);
      } catch {
        // already gone
      }
    }
    await sleepUnref(1_000);
    pids = pidsInside(names);
    if (!pids.length) return;
  }
}

async function deleteAll(names: string[]): Promise<string[]> {
  const failed: string[] = [];
  for (const n of names) {
    if (!existsSync(netnsPath(n))) continue;
    const r = await run(["ip", "netns", "del", n], 15_000);
    if (!r.ok && existsSync(netnsPath(n))) failed.push(`${n}: ${r.stderr.trim() || `exit ${r.exitCode ?? r.signal}`}`);
  }
  return failed;
}

function deleteAllSync(names: string[]): void {
  for (const n of names) {
    if (!existsSync(netnsPath(n))) continue;
    try {
      Bun.spawnSync({ cmd: ["ip", "netns", "del", n], stdout: "ignore", stderr: "ignore", timeout: 15_000 });
    } catch {
      // nothing more can be done while exiting
    }
  }
}

export interface NamespacesOuterSpec {
  set: NamespaceSet;
  script: string;
  args: string[];
  deadline: number;
  required: [program: string, pkg: string][];
}

/** Returns the exit status: the inner half's, 130 after a signal, 1 or 2 on setup problems. */
export async function runNamespacesOuter(spec: NamespacesOuterSpec): Promise<number> {
  if (process.getuid?.() !== 0) {
    log("must run as root (it creates network namespaces); try: sudo bun bench/namespaces.ts");
    return 2;
  }
  for (const [need, pkg] of spec.required) {
    if (!Bun.which(need)) {
      log(`required program not found: ${need} (Debian package: ${pkg})`);
      return 2;
    }
  }
  const stale = staleSuiteNamespaces();
  if (stale.length) {
    log(
      `note: ${stale.length} namespace(s) left by an earlier interrupted run: ${stale.join(", ")} ` +
        `(remove with: ip netns del NAME); sockwarden will list them too`,
    );
  }

  const all = [spec.set.own, ...spec.set.targets];
  const created: string[] = [];
  const onExit = (): void => deleteAllSync(all);
  process.on("exit", onExit);

  const relay = new SignalRelay(log);

  try {
    const t0 = performance.now();
    for (const n of all) {
      if (relay.signalled) return 130;
      if (Date.now() > spec.deadline) throw new Error("time budget (--max-minutes) used up while creating namespaces");
      created.push(n);
      await createOne(n);
    }
    if (relay.signalled) return 130;
    log(
      `created ${all.length} network namespaces in ${((performance.now() - t0) / 1000).toFixed(1)} s: ` +
        `${spec.set.own} (measuring from here) and ${spec.set.targets[0]} … ${spec.set.targets[spec.set.targets.length - 1]}`,
    );

    return await relay.run(spec.set.own, spec, { SW_BENCH_NETNS: spec.set.own, SW_BENCH_NS_TARGETS: spec.set.targets.join(",") });
  } catch (e) {
    log(`error: ${e instanceof Error ? e.message : String(e)}`);
    return relay.signalled ? 130 : 1;
  } finally {
    await emptyNamespaces(created);
    const failed = await deleteAll(created);
    if (failed.length) log(`could not delete: ${failed.join("; ")}`);
    else if (created.length) log(`deleted the ${created.length} network namespaces`);
    relay.dispose();
    process.off("exit", onExit);
  }
}
