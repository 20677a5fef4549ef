/**
 * A sensor ring too small for a burst (SOCKWARDEN_SENSOR_RING_BYTES=4096, one page) loses state
 * changes; what was lost is counted and a full snapshot taken at once sets the table right. A
 * process named `beacon` opens 400 connections as fast as it can in a namespace made here, half
 * of them held open and half reset at once, while a watcher and a daemon run with that ring.
 * Both are stopped (SIGSTOP) for the burst, so that their rings overflow whatever the machine's
 * load (a reader kept up with a burst slowed by a busy machine in 2 of 55 runs):
 * - the daemon's sockwarden_sensor_lost_total goes above 0 (watch has no way to tell it);
 * - the watcher's events, opened minus closed, come to exactly the TCP connections `ss` shows in
 *   the namespace once the burst is over. Its resync period is an hour and its interval dumps
 *   UDP only (no counters events asked for), so only the snapshot that follows a loss can put
 *   right what the lost changes would have said.
 * A second run lets the watcher read during the burst, losing what it does not read in time:
 * records of new sockets then come at kernel addresses whose last socket's CLOSE was lost,
 * connections open on the 4-tuples of retired ones, and records made before or during a snapshot
 * are read after it; the account must still add up.
 * A loss is made good by the next refresh, at most one interval after it was counted: the
 * account is compared once a refresh has come after the burst was over and the loss counted (two
 * connected UDP sockets, seen by refreshes only, one made after the other was reported).
 *
 * Nothing is timed: each wait is for a condition, bounded.
 *
 * Needs root (network namespaces, the sensor's capabilities) and a built dist/sockwarden.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BackgroundProcess, Netns, describeRun, requireRoot } from "./helpers/netns.ts";
import { EXECUTABLE, requireExecutable } from "./helpers/sockwarden.ts";
import { ssSnapshot } from "./helpers/ss.ts";
import {
  type WatchEvent,
  describeEvents,
  finishWatch,
  openByEvents,
  readEventsUntil,
  sentinel,
  sentinelBothEndsSeen,
  sentinelSeen,
  startBurst,
  startServer,
  tupleKey,
} from "./helpers/sensor-watch.ts";

const HOST = "127.0.0.1";
const PORT = 7980;
const SENTINEL_PORT = 7981;
const METRICS_PORT = 9481;
const METRICS = `127.0.0.1:${METRICS_PORT}`;
const CONNECTIONS = 400;
// Each connection from its own port (below the ephemeral range): a 4-tuple used again within the
// burst is another matter (see sensor-short-connections.test.ts).
const FIRST_CLIENT_PORT = 20_000;
const RING = { ...process.env, SOCKWARDEN_SENSOR_RING_BYTES: "4096" };

let ns: Netns | undefined;

beforeAll(() => {
  requireRoot("The sensor's ring overflow test");
  requireExecutable();
});

afterAll(async () => {
  await ns?.dispose();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Scrapes of the daemon's metrics leave connections (and TIME_WAITs) of their own: not counted. */
const scraping = (localPort: number, remotePort: number) => localPort === METRICS_PORT || remotePort === METRICS_PORT;

/** The connected TCP endpoints `ss` shows in the namespace (what plain watch reports). */
async function connectedNow(): Promise<Set<string>> {
  const entries = (await ssSnapshot(ns!)).filter((e) => e.protocol === "tcp" && e.state !== "LISTEN" && !scraping(e.localPort, e.remotePort));
  return new Set(entries.map((e) => tupleKey(e.localAddress, e.localPort, e.remoteAddress, e.remotePort)));
}

/** What the watcher's events leave open, scrapes aside. */
const openNow = (events: readonly WatchEvent[]) =>
  openByEvents(events.filter((e) => !scraping(e.localPort, e.remotePort)));

/** "" when the two sets are the same, else what differs. */
function difference(events: Set<string>, ss: Set<string>): string {
  const missing = [...ss].filter((k) => !events.has(k));
  const extra = [...events].filter((k) => !ss.has(k));
  if (missing.length === 0 && extra.length === 0) return "";
  return `open by the events but not in ss (${extra.length}): ${extra.slice(0, 8).join(" ")}\nin ss but not open by the events (${missing.length}): ${missing.slice(0, 8).join(" ")}`;
}

/** Every event of the ports a difference names, for the failure message; all of them in a file. */
function historyOf(events: readonly WatchEvent[], differs: string): string {
  const ports = new Set([...differs.matchAll(/:(\d+)>[^:]+:(\d+)/g)].flatMap((m) => [Number(m[1]), Number(m[2])]).filter((p) => p !== PORT));
  const file = join(mkdtempSync(join(tmpdir(), "sw-ring-")), "events.ndjson");
  writeFileSync(file, events.map((e) => JSON.stringify(e)).join("\n") + "\n");
  return `events of ports ${[...ports].join(", ")} (every event in ${file}):\n${describeEvents(events.filter((e) => ports.has(e.localPort) || ports.has(e.remotePort)))}`;
}

async function scrape(): Promise<string> {
  const r = await ns!.exec(["/usr/bin/python3", "-c", `import urllib.request;print(urllib.request.urlopen('http://${METRICS}/metrics', timeout=5).read().decode())`], { timeoutMs: 10_000 });
  expect(r.code, describeRun(r)).toBe(0);
  return r.stdout;
}

describe("a sensor ring that overflows", { timeout: 180_000 }, () => {
  it.each([
    { readers: "stopped", daemon: true },
    { readers: "reading", daemon: false },
  ])("readers $readers during the burst: what was lost is counted, and the events still add up to what ss shows", async ({ readers: mode, daemon: withDaemon }) => {
    await ns?.dispose();
    ns = await Netns.create("ring");
    const held: BackgroundProcess[] = [];
    const server = await startServer(ns!, "sw-listener", HOST, PORT);
    held.push(server.process);
    const daemon = withDaemon ? ns!.spawn([EXECUTABLE, "run", "--rule", "smtp-guard", "--sensor", "ebpf", "--interval", "1", "--resync", "3600", "--metrics", METRICS], { env: RING }) : null;
    if (daemon) held.push(daemon);
    const watcher = ns!.spawn(
      [EXECUTABLE, "watch", "--ndjson", "--initial", "-t", "-u", "--sensor", "ebpf", "--events", "opened,closed,state-changed", "--interval", "1", "--resync", "3600", "--duration", "170"],
      { env: RING },
    );
    const readers = mode === "stopped" ? [watcher, ...(daemon ? [daemon] : [])] : [];
    const events: WatchEvent[] = [];
    try {
      const ready = await sentinel(ns!, HOST, SENTINEL_PORT);
      held.push(ready.process);
      await readEventsUntil(watcher, events, sentinelSeen(ready.clientPort));
      expect(watcher.stderr).not.toMatch(/sensor unavailable|SOCKWARDEN_SENSOR_RING_BYTES/);
      if (daemon) {
        const daemonUp = performance.now() + 30_000;
        while (!/running /.test(daemon.stderr) && !daemon.hasExited && performance.now() < daemonUp) await sleep(50);
        expect(daemon.stderr, "daemon start").toMatch(/running /);
        expect(daemon.stderr).not.toMatch(/sensor unavailable|SOCKWARDEN_SENSOR_RING_BYTES/);
      }

      // Neither reads its ring during the burst: the kernel writes until it is full, then counts.
      for (const p of readers) process.kill(p.pid, "SIGSTOP");
      let burst: Awaited<ReturnType<typeof startBurst>>;
      try {
        burst = await startBurst(ns!, { name: "beacon", host: HOST, port: PORT, count: CONNECTIONS, bindHost: HOST, firstPort: FIRST_CLIENT_PORT, pattern: "burst" });
      } finally {
        for (const p of readers) process.kill(p.pid, "SIGCONT");
      }
      held.push(burst.process);
      const open = burst.run.connections.filter((c) => c.mode === "held");
      expect(open).toHaveLength(CONNECTIONS / 2);

      // The daemon counted what its ring lost.
      let lost = 0;
      if (daemon) {
        const lostBy = performance.now() + 30_000;
        while (lost === 0 && performance.now() < lostBy) {
          lost = Number(/^sockwarden_sensor_lost_total (\d+)$/m.exec(await scrape())?.[1] ?? 0);
          if (lost === 0) await sleep(100);
        }
        expect(lost, `sockwarden_sensor_lost_total; daemon stderr:\n${daemon.stderr}`).toBeGreaterThan(0);
      }

      // The server has every held connection (both ends in ss), and the resets are gone.
      const heldKeys = open.flatMap((c) => [tupleKey(c.local[0], c.local[1], c.remote[0], c.remote[1]), tupleKey(c.remote[0], c.remote[1], c.local[0], c.local[1])]);
      let ss = await connectedNow();
      const settledBy = performance.now() + 30_000;
      while (!(heldKeys.every((k) => ss.has(k)) && ss.size === heldKeys.length + 2) && performance.now() < settledBy) {
        await sleep(50);
        ss = await connectedNow();
      }
      expect(ss.size, `ss in the namespace: ${[...ss].slice(0, 8).join(" ")}`).toBe(heldKeys.length + 2);

      // The watcher's account comes to the same (each event read waits for the next line).
      await readEventsUntil(watcher, events, (all) => difference(openNow(all), ss) === "", 60_000).catch((err: Error) => {
        const differs = difference(openNow(events), ss);
        const ports = new Set([...differs.matchAll(/:(\d+)>[^:]+:(\d+)/g)].flatMap((m) => [Number(m[1]), Number(m[2])]));
        const uses = burst.run.connections.filter((c) => ports.has(c.local[1])).map((c) => `${c.local[1]} ${c.mode}`);
        throw new Error(`${differs}\nthe burst's connections from those ports: ${uses.join(", ")}\n${historyOf(events, differs)}\n${err.message}`);
      });
      // And is so once every loss is made good: the refresh that reports the second UDP socket
      // came after the first was reported, when every loss of the burst had been counted (the
      // counts are read at most 50 ms late); with one pending, that refresh is a full one. A
      // held TCP connection made after it is reported after that refresh's events.
      for (const port of [SENTINEL_PORT + 2, SENTINEL_PORT + 3]) {
        const udp = await sentinel(ns!, HOST, port, "udp");
        held.push(udp.process);
        await readEventsUntil(watcher, events, sentinelSeen(udp.clientPort, "udp"));
      }
      const last = await sentinel(ns!, HOST, SENTINEL_PORT + 1);
      held.push(last.process);
      await readEventsUntil(watcher, events, sentinelBothEndsSeen(last.clientPort, SENTINEL_PORT + 1));
      await finishWatch(watcher, events);
      const finalSs = await connectedNow();
      const finalDifference = difference(openNow(events), finalSs);
      expect(finalDifference, finalDifference === "" ? "" : historyOf(events, finalDifference)).toBe("");
      const beacons = events.filter((e) => e.type === "opened" && e.process?.pid === burst.run.pid);
      console.log(`ring overflow, readers ${mode}: ${daemon ? `daemon lost ${lost} changes; ` : ""}the watcher reported ${beacons.length} of beacon's ${CONNECTIONS} connections opened with its process, ${events.length} events in all`);
    } finally {
      await watcher.stop();
      for (const p of held) await p.stop();
    }
  });
});
