// The watch suite's short-connection phase: plain `sockwarden watch --ndjson` (no -a) while a
// process named sw-beacon (traffic.py beacon) makes connections of 1–5 ms each, closed
// normally, with a reset, or by the peer, and stays alive afterwards. Counted: how many of those
// connections the watch reported at all, and how many with sw-beacon's name and PID. (--initial
// is added only so that the first sentinel shows up however early it was opened.)
// Readiness and completion are shown by held sentinel connections, not by sleeping: the first
// one's opened event means the watch is running; one opened after the burst and two refreshes
// more mean everything it could say about the burst has been said.
import { PYTHON, TRAFFIC } from "../../test/support/traffic/scripts.ts";
import { LineProcess, pause, wasInterrupted } from "./daemon-proc.ts";
import { fallbackNote, type Sensor } from "./sensors.ts";
import { firstLine } from "./proc.ts";

export const BEACON_NAME = "sw-beacon";
export const BEACON_PORT = 17700;
export const SHORT_MODES = ["fin", "rst", "peer"] as const;
type Mode = (typeof SHORT_MODES)[number];

interface WatchEvent {
  type?: string;
  protocol?: string;
  localAddress?: string;
  localPort?: number;
  remoteAddress?: string;
  remotePort?: number;
  process?: { pid?: number; name?: string } | null;
}

export interface ShortCounts {
  connections: number;
  /** Some event of the connection's client socket was reported. */
  reported: number;
  /** Some event named the beacon's process (name and PID). */
  withProcess: number;
}

export interface ShortResult {
  sensor: Sensor;
  status: "ok" | "failed" | "skipped";
  error?: string;
  cmd: string[];
  requested: number;
  client: ShortCounts;
  byMode: Record<Mode, ShortCounts>;
  /** Client connections reported with another process, or with beacon's name and a wrong PID. */
  wrongProcess: number;
  /** The accepted sides: reported, and with the server's process. */
  accepted: ShortCounts;
  /** withProcess / connections. */
  share: number | null;
  burstMs: number | null;
  holdMs: { min: number; max: number } | null;
  events: number;
  notes: string[];
}

export function emptyShort(sensor: Sensor, requested: number, status: ShortResult["status"], error?: string): ShortResult {
  const zero = (): ShortCounts => ({ connections: 0, reported: 0, withProcess: 0 });
  return {
    sensor, status, error, cmd: [], requested, client: zero(), byMode: { fin: zero(), rst: zero(), peer: zero() },
    wrongProcess: 0, accepted: zero(), share: null, burstMs: null, holdMs: null, events: 0, notes: [],
  };
}

export interface ShortParams {
  exe: string;
  sensor: Sensor;
  sensorWords: string[];
  connections: number;
  intervalS: number;
  seed: number;
  log: (msg: string) => void;
}

export function shortPhaseEstimateMs(p: Pick<ShortParams, "connections" | "intervalS">): number {
  return p.connections * 10 + 4 * p.intervalS * 1000 + 20_000;
}

export async function measureShort(p: ShortParams): Promise<ShortResult> {
  const r = emptyShort(p.sensor, p.connections, "ok");
  const lifetimeS = Math.ceil(shortPhaseEstimateMs(p) / 1000) + 60;
  // --initial: the first held connection is reported whether the watch's first look saw it or a
  // change after it; it changes nothing about connections opened later.
  r.cmd = [p.exe, "watch", "--ndjson", "--initial", "--interval", String(p.intervalS), "--duration", String(lifetimeS), ...p.sensorWords];
  const events: WatchEvent[] = [];
  let bad = 0;
  const helper = new LineProcess([PYTHON, TRAFFIC, "beacon", "--port", String(BEACON_PORT), "--name", BEACON_NAME, "--lifetime", String(lifetimeS)], (lifetimeS + 10) * 1000);
  let watch: LineProcess | null = null;
  const seenOpened = (port: number): boolean => events.some((e) => e.type === "opened" && e.localPort === port && e.remotePort === BEACON_PORT);
  const waitFor = async (what: string, ok: () => boolean, timeoutMs: number): Promise<void> => {
    const end = performance.now() + timeoutMs;
    while (!ok()) {
      if (watch?.exited) throw new Error(`watch exited while waiting for ${what}: ${firstLine(watch.stderr) || "no message"}`);
      if (performance.now() > end) throw new Error(`watch did not report ${what} within ${timeoutMs} ms`);
      if (!(await pause(20))) throw new Error("interrupted");
    }
  };
  try {
    const ready = await helper.expectLine(/^ready \d+ (\d+)$/, 10_000, "traffic beacon");
    const serverPid = Number(ready[1]);
    watch = new LineProcess(r.cmd, (lifetimeS + 10) * 1000, (line) => {
      try {
        events.push(JSON.parse(line) as WatchEvent);
      } catch {
        bad++;
      }
    });
    const sentinel = async (): Promise<number> => {
      helper.write("hold\n");
      return Number((await helper.expectLine(/^held (\d+)$/, 5000, "traffic beacon"))[1]);
    };
    const first = await sentinel();
    await waitFor("the first held connection", () => seenOpened(first), 30_000);

    helper.write(`burst ${p.connections} ${p.seed}\n`);
    const burstLine = await helper.expectLine(/^\{.*\}$/, Math.max(30_000, p.connections * 50), "traffic beacon");
    const burst = JSON.parse(burstLine[0]) as { pid: number; ms: number; conns: { port: number; mode: Mode; holdMs: number }[] };
    r.burstMs = burst.ms;
    const holds = burst.conns.map((c) => c.holdMs);
    r.holdMs = holds.length ? { min: Math.min(...holds), max: Math.max(...holds) } : null;

    const after = await sentinel();
    await waitFor("a held connection opened after the burst", () => seenOpened(after), 30_000);
    // Two more refreshes: polling reports what it learnt of the burst at a refresh.
    if (!(await pause(2 * p.intervalS * 1000 + 500))) throw new Error("interrupted");
    const stop = await watch.stop(5000, "SIGTERM");
    if (stop.killed) r.notes.push("watch did not stop within 5 s of SIGTERM: killed");
    const fellBack = p.sensor === "ebpf" ? fallbackNote(watch.stderr) : null;
    if (fellBack) throw new Error(`watch fell back to polling: eBPF sensor unavailable: ${fellBack}`);

    r.events = events.length;
    const ports = new Map(burst.conns.map((c) => [c.port, c.mode]));
    const client = new Map<number, WatchEvent[]>();
    const accepted = new Map<number, WatchEvent[]>();
    for (const e of events) {
      if (e.protocol !== "tcp") continue;
      if (e.remotePort === BEACON_PORT && e.localPort !== undefined && ports.has(e.localPort)) {
        client.set(e.localPort, [...(client.get(e.localPort) ?? []), e]);
      } else if (e.localPort === BEACON_PORT && e.remotePort !== undefined && ports.has(e.remotePort)) {
        accepted.set(e.remotePort, [...(accepted.get(e.remotePort) ?? []), e]);
      }
    }
    for (const c of burst.conns) {
      const mine = client.get(c.port) ?? [];
      const named = mine.some((e) => e.process?.name === BEACON_NAME && e.process?.pid === burst.pid);
      const m = r.byMode[c.mode];
      r.client.connections++;
      m.connections++;
      if (mine.length) {
        r.client.reported++;
        m.reported++;
      }
      if (named) {
        r.client.withProcess++;
        m.withProcess++;
      } else if (mine.some((e) => e.process)) r.wrongProcess++;
      const theirs = accepted.get(c.port) ?? [];
      r.accepted.connections++;
      if (theirs.length) r.accepted.reported++;
      if (theirs.some((e) => e.process?.pid === serverPid)) r.accepted.withProcess++;
    }
    r.share = r.client.connections ? r.client.withProcess / r.client.connections : null;
    if (bad) r.notes.push(`${bad} output line(s) of watch were not JSON`);
    if (r.wrongProcess) r.notes.push(`${r.wrongProcess} connection(s) reported with another process`);
  } catch (e) {
    r.status = "failed";
    r.error = wasInterrupted() ? "interrupted" : e instanceof Error ? e.message : String(e);
  } finally {
    if (watch && !watch.exited) await watch.stop(3000, "SIGTERM");
    helper.write("quit\n");
    await helper.stop(3000);
  }
  return r;
}
