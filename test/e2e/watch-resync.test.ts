/**
 * `watch --sensor ebpf --interval 0.2 --resync 2` against the real kernel, in a network
 * namespace made here. Without counters events, TCP comes from the sensor and each interval
 * dumps UDP only; every 2 s a full snapshot reconciles. Held TCP connections, opened and then
 * closed, are reported once each (opened, closed), through resyncs that find them established
 * and then in TIME_WAIT; a UDP socket is reported by the refreshes between resyncs; no event
 * is reported twice.
 *
 * The order of things is shown by events, never by timing: a held UDP socket's opened event
 * means the watcher runs; a "marker" connection, whose process moved to another namespace
 * before connecting so that the sensor leaves it out, is reported only by a full snapshot, so its
 * opened event means a resync came after it was made.
 *
 * Needs root (network namespaces, setns, the sensor's capabilities) and a built dist/sockwarden.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fileURLToPath } from "node:url";
import { type BackgroundProcess, Netns, requireRoot } from "./helpers/netns.ts";
import { EXECUTABLE, requireExecutable } from "./helpers/sockwarden.ts";

const PYTHON = "/usr/bin/python3";
const PEERS = fileURLToPath(new URL("./helpers/resync-peers.py", import.meta.url));
const SERVER_PORT = 7740;
const CONNECTIONS = 10;

interface WatchEvent {
  type: string;
  seq: number;
  protocol: string;
  state: string | null;
  previousState?: string | null;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
}

let ns: Netns | undefined;
/** Where marker processes move to. */
let away: Netns | undefined;

beforeAll(async () => {
  requireRoot("The resync test");
  requireExecutable();
  ns = await Netns.create("rsync");
  away = await Netns.create("away");
});

afterAll(async () => {
  await ns?.dispose();
  await away?.dispose();
});

const describeEvent = (e: WatchEvent) => `${e.type} ${e.protocol} ${e.localPort}>${e.remotePort} ${e.previousState ?? ""}${e.previousState ? "->" : ""}${e.state ?? ""}`;

/** Reads events until `until` holds; throws with what it has when time runs out first. */
async function collect(watcher: BackgroundProcess, into: WatchEvent[], until: (events: WatchEvent[]) => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!until(into)) {
    let line: string;
    try {
      line = await watcher.nextLine(Math.max(1, deadline - performance.now()));
    } catch (err) {
      throw new Error(`${(err as Error).message}\nevents so far: ${into.map(describeEvent).join("; ")}\nstderr: ${watcher.stderr}`);
    }
    into.push(JSON.parse(line) as WatchEvent);
  }
}

const opened = (protocol: string, localPort: number) => (events: WatchEvent[]) =>
  events.some((e) => e.type === "opened" && e.protocol === protocol && e.localPort === localPort);

describe("watch with the sensor and a resync period", { timeout: 120_000 }, () => {
  it("reports held TCP connections and a UDP socket once each, through resyncs", async () => {
    const server = ns!.spawn([PYTHON, PEERS, "server", String(SERVER_PORT)]);
    expect(await server.nextLine(15_000)).toBe("ready");
    const watcher = ns!.spawn([
      EXECUTABLE, "watch", "--ndjson", "--initial", "-a", "--events", "opened,closed,state-changed",
      "--sensor", "ebpf", "--interval", "0.2", "--resync", "2", "--duration", "110",
    ]);
    const events: WatchEvent[] = [];
    const held: BackgroundProcess[] = [];
    const peer = async (...args: string[]) => {
      const p = ns!.spawn([PYTHON, PEERS, ...args]);
      held.push(p);
      return { process: p, line: await p.nextLine(15_000) };
    };
    /** A marker connection, and the resync that reports it. */
    const resync = async () => {
      const m = await peer("marker", String(SERVER_PORT), `/run/netns/${away!.name}`);
      await collect(watcher, events, opened("tcp", Number(m.line)));
      return Number(m.line);
    };
    try {
      // The sensor starts before the first look: a UDP socket reported (as there at the start with
      // --initial, or opened later) means both run.
      const first = await peer("udp");
      const udpPort = Number(first.line);
      await collect(watcher, events, opened("udp", udpPort));

      const clients = await peer("clients", String(SERVER_PORT), String(CONNECTIONS));
      const ports = JSON.parse(clients.line) as number[];
      expect(new Set(ports).size).toBe(CONNECTIONS);
      const both = (p: number) => (e: WatchEvent) => (e.localPort === p && e.remotePort === SERVER_PORT) || (e.localPort === SERVER_PORT && e.remotePort === p);
      await collect(watcher, events, (got) => ports.every((p) => got.filter((e) => e.type === "opened" && both(p)(e)).length === 2));
      // A resync finds them established: it must add nothing about them; and the refreshes
      // between, which dump UDP only, must not take them (or the listener) for closed.
      const markers = [await resync()];
      expect(events.filter((e) => e.type === "closed" && e.protocol === "tcp").map(describeEvent)).toEqual([]);

      clients.process.child.stdin?.write("close\n");
      expect(await clients.process.nextLine(15_000)).toBe("closed");
      await collect(watcher, events, (got) => ports.every((p) => got.filter((e) => e.type === "closed" && both(p)(e)).length === 2));
      // Two resyncs find the clients' sides in TIME_WAIT: again nothing about them.
      markers.push(await resync(), await resync());

      // A UDP socket is reported by the refreshes between resyncs, and its close too.
      const second = await peer("udp");
      const secondPort = Number(second.line);
      await collect(watcher, events, opened("udp", secondPort));
      second.process.closeInput();
      await collect(watcher, events, (got) => got.some((e) => e.type === "closed" && e.protocol === "udp" && e.localPort === secondPort));
      markers.push(await resync());

      expect(await watcher.terminate(), watcher.stderr).toBe(true);
      for (const line of watcher.remainingLines()) events.push(JSON.parse(line) as WatchEvent);
      expect(watcher.stderr).not.toMatch(/sensor unavailable|refresh failed/);

      for (const p of ports) {
        for (const side of [(e: WatchEvent) => e.localPort === p && e.remotePort === SERVER_PORT, (e: WatchEvent) => e.localPort === SERVER_PORT && e.remotePort === p]) {
          const mine = events.filter(side);
          const what = `connection of port ${p}: ${mine.map(describeEvent).join("; ")}`;
          expect(mine.filter((e) => e.type === "opened"), what).toHaveLength(1);
          expect(mine.filter((e) => e.type === "closed"), what).toHaveLength(1);
        }
      }
      for (const port of [udpPort, secondPort]) expect(events.filter((e) => e.protocol === "udp" && e.localPort === port && e.type === "opened")).toHaveLength(1);
      expect(events.filter((e) => e.protocol === "udp" && e.localPort === secondPort && e.type === "closed")).toHaveLength(1);
      for (const m of markers) expect(events.filter((e) => e.localPort === m && e.type === "opened")).toHaveLength(1);
      expect(events.filter((e) => e.localPort === SERVER_PORT && e.state === "LISTEN" && e.type !== "opened").map(describeEvent)).toEqual([]);
      // Nothing at all is told twice.
      const told = events.map(describeEvent);
      expect(told.filter((t, i) => told.indexOf(t) !== i)).toEqual([]);
      const seqs = events.map((e) => e.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    } finally {
      await watcher.stop();
      for (const p of held) await p.stop();
      await server.stop();
    }
  });
});
