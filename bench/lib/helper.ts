// The connection holder (test/support/traffic/traffic.py hold), here or in a named network namespace, and TCP socket
// counts from a namespace's /proc/net.
import { readFileSync } from "node:fs";
import os from "node:os";
import { hostOpenFiles } from "./host.ts";
import { PYTHON, TRAFFIC } from "../../test/support/traffic/scripts.ts";
import { firstLine } from "./proc.ts";
import { netnsPath } from "./netns.ts";

/** A sleep that does not keep the process alive by itself. */
export function sleepUnref(ms: number): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    t.unref();
  });
}

export { PYTHON };

export interface HeldConnections {
  /** The helper's PID: /proc/PID/net shows its namespace's sockets. */
  pid: number;
  connections: number;
  /** Sockets the helper reports holding (2N plus its listeners). */
  sockets: number;
  workers: number;
  setupMs: number;
  alive(): boolean;
  stop(): Promise<void>;
}

/**
 * Start the helper (in this process's network namespace, or inside `netns` through nsenter) and
 * wait until it prints "ready N SOCKETS WORKERS". It exits when its stdin closes (this process
 * gone included) or after lifetimeS.
 */
export async function holdConnections(n: number, lifetimeS: number, readyTimeoutMs: number, netns?: string): Promise<HeldConnections> {
  const t0 = performance.now();
  const who = netns ? `${netns}: holder` : "helper";
  const helper = [PYTHON, TRAFFIC, "hold", "--connections", String(n), "--lifetime", String(Math.max(5, Math.floor(lifetimeS)))];
  const proc = Bun.spawn({
    cmd: netns ? ["nsenter", `--net=${netnsPath(netns)}`, "--", ...helper] : helper,
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
    // Safety net only: the helper bounds itself, this bounds it once more.
    timeout: Math.ceil(lifetimeS + 30) * 1000,
    killSignal: "SIGKILL",
  });
  const stderrP = new Response(proc.stderr).text();

  let exited = false;
  void proc.exited.then(() => {
    exited = true;
  });

  const stop = async (): Promise<void> => {
    if (exited) return;
    try {
      proc.stdin.end();
    } catch {
      // already closed
    }
    const done = await Promise.race([proc.exited.then(() => true), sleepUnref(10_000).then(() => false)]);
    if (!done) {
      proc.kill("SIGKILL");
      await proc.exited;
    }
  };

  const reader = proc.stdout.getReader();
  const decoder = new TextDecoder();
  let text = "";
  const timer = sleepUnref(readyTimeoutMs).then(() => "timeout" as const);
  try {
    for (;;) {
      const r = await Promise.race([reader.read(), timer]);
      if (r === "timeout") throw new Error(`${who} not ready after ${readyTimeoutMs} ms`);
      if (r.done) {
        await proc.exited;
        const err = firstLine(await stderrP);
        throw new Error(`${who} exited (${proc.exitCode ?? proc.signalCode}) before ready: ${err || "no message"}`);
      }
      text += decoder.decode(r.value, { stream: true });
      const m = /^ready (\d+) (\d+) (\d+)$/m.exec(text);
      if (m) {
        // Keep draining its stdout so it can never block on a full pipe.
        void (async () => {
          for (;;) if ((await reader.read()).done) return;
        })().catch(() => undefined);
        return {
          pid: proc.pid,
          connections: Number(m[1]),
          sockets: Number(m[2]),
          workers: Number(m[3]),
          setupMs: performance.now() - t0,
          alive: () => !exited,
          stop,
        };
      }
    }
  } catch (e) {
    await stop();
    throw e;
  }
}

export interface SocketCount {
  total: number;
  established: number;
  listen: number;
  other: number;
}

/**
 * TCP sockets (IPv4 and IPv6) of one namespace by state (the hex code of /proc/net/tcp: "01"
 * established, "0A" listening, "06" TIME_WAIT…), from a /proc/net directory: "/proc/net" for this
 * process's, "/proc/PID/net" for PID's. Null when neither file could be read.
 */
export function tcpStates(procNet = "/proc/net"): Map<string, number> | null {
  const states = new Map<string, number>();
  let read = 0;
  for (const file of [`${procNet}/tcp`, `${procNet}/tcp6`]) {
    let text: string;
    try {
      text = readFileSync(file, "latin1");
    } catch {
      continue;
    }
    read++;
    const lines = text.split("\n");
    for (let i = 1; i < lines.length; i++) {
      // "  sl  local_address rem_address   st": the state is the fourth field.
      const st = lines[i]!.trim().split(/\s+/, 4)[3];
      if (st !== undefined) states.set(st, (states.get(st) ?? 0) + 1);
    }
  }
  return read ? states : null;
}

/** Count TCP sockets of one namespace (see tcpStates). */
export async function countTcpIn(procNet: string): Promise<SocketCount | null> {
  const states = tcpStates(procNet);
  if (!states) return null;
  const total = [...states.values()].reduce((a, b) => a + b, 0);
  const established = states.get("01") ?? 0;
  const listen = states.get("0A") ?? 0;
  return { total, established, listen, other: total - established - listen };
}

/** Count TCP sockets in this process's network namespace. */
export async function countTcpSockets(): Promise<SocketCount> {
  return (await countTcpIn("/proc/net")) ?? { total: 0, established: 0, listen: 0, other: 0 };
}

/** Wait (bounded) until no TCP sockets are left in this namespace. */
export async function waitNoSockets(timeoutMs: number): Promise<SocketCount> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const c = await countTcpSockets();
    if (c.total === 0 || performance.now() > end) return c;
    await Bun.sleep(200);
  }
}

/** What a size of the list and watch suites records about the connections it holds and the host. */
export async function heldFacts(held: HeldConnections): Promise<{
  expectedSockets: number;
  helperWorkers: number;
  helperSetupMs: number;
  seen: SocketCount;
  hostOpenFiles: number | null;
  loadavg: string;
}> {
  return {
    expectedSockets: held.sockets,
    helperWorkers: held.workers,
    helperSetupMs: held.setupMs,
    seen: await countTcpSockets(),
    hostOpenFiles: await hostOpenFiles(),
    loadavg: os.loadavg().map((x) => x.toFixed(2)).join(" "),
  };
}
