/**
 * Driving `sockwarden watch --ndjson` through bursts of short connections in a namespace: the
 * listener and client of test/support/traffic (traffic.py listen, connect), held sentinel connections that
 * show the order of things (a held connection's opened event means everything the sensor was told
 * before it has been reported; a connected UDP socket, seen by snapshots only, means a refresh came
 * after it), and the account of what is open according to the events.
 */
import { expect } from "vitest";
import { type BackgroundProcess, type Netns, describeRun } from "./netns.ts";
import { ssSnapshot } from "./ss.ts";
import { CONNECTIONS as CLIENT, LISTENER as SERVER, PYTHON, type ClientRun } from "../../support/traffic/scripts.ts";

export { PYTHON };
export type { ClientConnection, ClientRun } from "../../support/traffic/scripts.ts";

export interface WatchEvent {
  type: string;
  seq: number;
  protocol: string;
  state: string | null;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  process: { pid: number; name: string } | null;
}

const describeEvent = (e: WatchEvent) =>
  `#${e.seq} ${e.type} ${e.localAddress}:${e.localPort}>${e.remoteAddress}:${e.remotePort} ${e.state} ${e.process ? `${e.process.name}/${e.process.pid}` : "-"}`;

/** Reads events into `into` until `until` holds; throws with what it has when time runs out. */
export async function readEventsUntil(watcher: BackgroundProcess, into: WatchEvent[], until: (events: WatchEvent[]) => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!until(into)) {
    let line: string;
    try {
      line = await watcher.nextLine(Math.max(1, deadline - performance.now()));
    } catch (err) {
      const tail = into.slice(-40).map(describeEvent).join("\n");
      throw new Error(`${(err as Error).message}\nlast events (${into.length} in all):\n${tail}\nstderr: ${watcher.stderr}`);
    }
    into.push(JSON.parse(line) as WatchEvent);
  }
}

/** Stops the watcher with SIGTERM and adds every line it printed that was not read yet. */
export async function finishWatch(watcher: BackgroundProcess, into: WatchEvent[]): Promise<void> {
  expect(await watcher.terminate(), `watch did not stop on SIGTERM; stderr: ${watcher.stderr}`).toBe(true);
  for (const line of watcher.remainingLines()) into.push(JSON.parse(line) as WatchEvent);
}

/** Starts the listener (traffic.py listen) as NAME on HOST:PORT; resolves once it listens, with its pid. */
export async function startServer(ns: Netns, name: string, host: string, port: number): Promise<{ process: BackgroundProcess; pid: number }> {
  const server = ns.spawn([PYTHON, ...SERVER, name, host, String(port)]);
  const line = await server.nextLine(15_000);
  const match = /^ready (\d+)$/.exec(line);
  if (!match) throw new Error(`traffic.py listen said ${JSON.stringify(line)}; stderr: ${server.stderr}`);
  return { process: server, pid: Number(match[1]) };
}

export interface ClientOptions {
  name: string;
  host: string;
  port: number;
  count: number;
  bindHost: string;
  /** The first connection's local port (the next ones count up, but for "reuse"); 0 for any. */
  firstPort?: number;
  pattern: "mixed" | "alternate" | "burst" | "reuse";
  holdMs?: number;
}

function clientArgv(o: ClientOptions): string[] {
  return [PYTHON, ...CLIENT, o.name, o.host, String(o.port), String(o.count), o.bindHost, String(o.firstPort ?? 0), o.pattern, String(o.holdMs ?? 1)];
}

/** Runs a "mixed" or "alternate" client to the end; returns what it recorded. */
export async function runClient(ns: Netns, o: ClientOptions): Promise<ClientRun> {
  const r = await ns.exec(clientArgv(o), { timeoutMs: 60_000 });
  expect(r.code, describeRun(r)).toBe(0);
  const run = JSON.parse(r.stdout) as ClientRun;
  expect(run.connections).toHaveLength(o.count);
  return run;
}

/** Starts a "burst" or "reuse" client; resolves once its connections are made (the held ones stay open). */
export async function startBurst(ns: Netns, o: ClientOptions): Promise<{ process: BackgroundProcess; run: ClientRun }> {
  const p = ns.spawn(clientArgv(o));
  const run = JSON.parse(await p.nextLine(60_000)) as ClientRun;
  expect(run.connections).toHaveLength(o.count);
  return { process: p, run };
}

/**
 * Waits until no TCP socket on `port` in the namespace is in a state other than LISTEN or
 * TIME_WAIT: the server has closed its side of every connection the client ended.
 */
export async function waitSettled(ns: Netns, port: number, timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const busy = (await ssSnapshot(ns)).filter(
      (e) => e.protocol === "tcp" && (e.localPort === port || e.remotePort === port) && e.state !== "LISTEN" && e.state !== "TIME_WAIT",
    );
    if (busy.length === 0) return;
    if (performance.now() > deadline) throw new Error(`sockets on port ${port} still open after ${timeoutMs} ms: ${JSON.stringify(busy.slice(0, 5))}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * TCP: listens on its port, connects to itself. UDP: a socket connected to the port (seen by
 * snapshots only, never by the sensor). Prints the client's port, holds until stdin closes.
 */
const SENTINEL_PY = `
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
if sys.argv[3] == "udp":
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.connect((host, port))
    print(u.getsockname()[1], flush=True)
    sys.stdin.read()
    sys.exit(0)
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((host, port))
srv.listen(8)
c = socket.create_connection((host, port))
a, _ = srv.accept()
print(c.getsockname()[1], flush=True)
sys.stdin.read()
`;

/** A held connection (or connected UDP socket) in the namespace; resolves once it exists. */
export async function sentinel(ns: Netns, host: string, port: number, protocol: "tcp" | "udp" = "tcp"): Promise<{ process: BackgroundProcess; clientPort: number }> {
  const p = ns.spawn([PYTHON, "-c", SENTINEL_PY, host, String(port), protocol]);
  return { process: p, clientPort: Number(await p.nextLine(10_000)) };
}

/** Whether an opened event of the sentinel's client end is among the events. */
export const sentinelSeen = (clientPort: number, protocol = "tcp") => (events: WatchEvent[]) =>
  events.some((e) => e.type === "opened" && e.protocol === protocol && e.localPort === clientPort);

/** Whether opened events of both ends of a TCP sentinel (listening on `port`) are among the events. */
export const sentinelBothEndsSeen = (clientPort: number, port: number) => (events: WatchEvent[]) =>
  sentinelSeen(clientPort)(events) && events.some((e) => e.type === "opened" && e.protocol === "tcp" && e.localPort === port && e.remotePort === clientPort);

export const tupleKey = (localAddress: string, localPort: number, remoteAddress: string, remotePort: number) =>
  `${localAddress}:${localPort}>${remoteAddress}:${remotePort}`;

export const eventKey = (e: WatchEvent) => tupleKey(e.localAddress, e.localPort, e.remoteAddress, e.remotePort);

/** The TCP endpoints open by the events' account (opened and not closed since), by key. */
export function openByEvents(events: readonly WatchEvent[]): Set<string> {
  const open = new Set<string>();
  for (const e of events) {
    if (e.protocol !== "tcp") continue;
    if (e.type === "opened") open.add(eventKey(e));
    else if (e.type === "closed") open.delete(eventKey(e));
  }
  return open;
}

export function describeEvents(events: readonly WatchEvent[]): string {
  return events.map(describeEvent).join("\n");
}
