// One conn_helper.py per benchmark namespace, started inside it with nsenter, and the TCP socket
// count of each namespace read from its holder's /proc/PID/net/tcp{,6}.
import path from "node:path";
import { netnsPath } from "./netns.ts";
import { PYTHON, sleepUnref } from "./helper.ts";
import { firstLine } from "./proc.ts";
import { NS_BENCH_DIR } from "./namespaces-options.ts";

const SCRIPT = path.join(NS_BENCH_DIR, "conn_helper.py");

export interface Holder {
  netns: string;
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
 * Start conn_helper.py inside `netns` and wait for "ready N SOCKETS WORKERS". It exits when its
 * stdin closes (this process gone included) or after lifetimeS.
 */
export async function startHolder(netns: string, connections: number, lifetimeS: number, readyTimeoutMs: number): Promise<Holder> {
  const t0 = performance.now();
  const proc = Bun.spawn({
    cmd: [
      "nsenter",
      `--net=${netnsPath(netns)}`,
      "--",
      PYTHON,
      SCRIPT,
      String(connections),
      "--lifetime",
      String(Math.max(5, Math.floor(lifetimeS))),
    ],
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
    // The helper bounds its own life; this bounds it once more.
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
      if (r === "timeout") throw new Error(`${netns}: holder not ready after ${readyTimeoutMs} ms`);
      if (r.done) {
        await proc.exited;
        const err = firstLine(await stderrP);
        throw new Error(`${netns}: holder exited (${proc.exitCode ?? proc.signalCode}) before ready: ${err || "no message"}`);
      }
      text += decoder.decode(r.value, { stream: true });
      const m = /^ready (\d+) (\d+) (\d+)$/m.exec(text);
      if (m) {
        void (async () => {
          for (;;) if ((await reader.read()).done) return;
        })().catch(() => undefined);
        return {
          netns,
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

export interface TcpCount {
  total: number;
  established: number;
  listen: number;
  other: number;
}

/** TCP sockets of the namespace process `pid` lives in (/proc/PID/net is per namespace). */
export async function countTcpOf(pid: number): Promise<TcpCount | null> {
  const c: TcpCount = { total: 0, established: 0, listen: 0, other: 0 };
  let read = 0;
  for (const file of [`/proc/${pid}/net/tcp`, `/proc/${pid}/net/tcp6`]) {
    let text: string;
    try {
      text = await Bun.file(file).text();
    } catch {
      continue;
    }
    read++;
    const lines = text.split("\n");
    for (let i = 1; i < lines.length; i++) {
      const st = lines[i]!.trim().split(/\s+/)[3];
      if (st === undefined) continue;
      c.total++;
      if (st === "01") c.established++;
      else if (st === "0A") c.listen++;
      else c.other++;
    }
  }
  return read ? c : null;
}
