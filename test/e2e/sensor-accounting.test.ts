/**
 * `watch --sensor ebpf --resync 1 --interval 0.2` through a few hundred connections made at a
 * steady high rate in a network namespace made here, of every kind: held open, reset, closed
 * normally (the client's side lingers in TIME_WAIT) and closed by the server first (the
 * server's side does). Full dumps every second and the kernel's destroy notices race with the
 * sensor's own records, so each connection is seen by two or three sources: each side of each
 * must still be reported opened exactly once and closed exactly once (the held ones not at
 * all), and nothing may be reported on the server's port under a 4-tuple the
 * client never had.
 *
 * Every connection has a local port of its own, so a 4-tuple names one connection. The end of
 * the traffic is shown by sentinels, never by timing: a held TCP connection (its opened event
 * comes after every change the sensor was told before it), then connected UDP sockets made one
 * after another, each seen by a refresh after the previous one was reported, enough of them
 * that a full refresh (one a second) came after the last connection closed.
 *
 * `-a`: a connection known only from its destroy notice is reported in state CLOSE, which the
 * default selection passes over; the daemon's rules see every event, and so does this test.
 *
 * Needs root (network namespaces, the sensor's capabilities) and a built dist/sockwarden.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BackgroundProcess, Netns, describeRun, requireRoot } from "./helpers/netns.ts";
import { EXECUTABLE, requireExecutable } from "./helpers/sockwarden.ts";
import {
  type ClientRun,
  PYTHON,
  type WatchEvent,
  describeEvents,
  eventKey,
  finishWatch,
  readEventsUntil,
  sentinel,
  sentinelSeen,
  startServer,
  tupleKey,
} from "./helpers/sensor-watch.ts";
import { ssSnapshot } from "./helpers/ss.ts";
import { CONNECTIONS as CLIENT } from "../support/traffic/scripts.ts";

const SERVER_HOST = "10.78.0.1";
const CLIENT_HOST = "10.78.0.2";
const SENTINEL_HOST = "127.0.0.1";
const PORT = 7900;
const FIRST_CLIENT_PORT = 30_000;
const CONNECTIONS = 600;
const PER_SECOND = 300;
/**
 * Held connections made before the watcher starts: a larger table makes each dump longer, and
 * races with the sensor more likely.
 */
const BALLAST = 3000;
/** Refreshes every 0.2 s, a full one every 1 s: eight refreshes in a row span a full one. */
const REFRESHES_AFTER = 8;

let ns: Netns | undefined;

/**
 * Waits until every TCP socket on `port` in the namespace is listening, in TIME_WAIT or one side
 * of a held connection: both sides of every other connection have closed.
 */
async function waitSettled(ns: Netns, port: number, heldPorts: ReadonlySet<number>, timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const busy = (await ssSnapshot(ns)).filter(
      (e) =>
        e.protocol === "tcp" &&
        (e.localPort === port || e.remotePort === port) &&
        e.state !== "LISTEN" &&
        e.state !== "TIME_WAIT" &&
        !(e.state === "ESTABLISHED" && (heldPorts.has(e.localPort) || heldPorts.has(e.remotePort))),
    );
    if (busy.length === 0) return;
    if (performance.now() > deadline) throw new Error(`sockets on port ${port} still closing after ${timeoutMs} ms: ${JSON.stringify(busy.slice(0, 5))}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

beforeAll(async () => {
  requireRoot("The sensor accounting test");
  requireExecutable();
  ns = await Netns.create("acct");
  for (const address of [SERVER_HOST, CLIENT_HOST]) {
    const added = await ns.exec(["ip", "addr", "add", `${address}/32`, "dev", "lo"], { timeoutMs: 5_000 });
    expect(added.code, describeRun(added)).toBe(0);
  }
});

afterAll(async () => {
  await ns?.dispose();
});

describe("watch --sensor ebpf with resyncs racing the sensor", { timeout: 180_000 }, () => {
  it(`reports each side of ${CONNECTIONS} connections opened once and closed once`, async () => {
    const held: BackgroundProcess[] = [];
    const server = await startServer(ns!, "sw-listener", SERVER_HOST, PORT);
    held.push(server.process);
    const churn = ns!.spawn([PYTHON, ...CLIENT, "churner", SERVER_HOST, String(PORT), String(BALLAST + CONNECTIONS), CLIENT_HOST, String(FIRST_CLIENT_PORT), "churn", String(PER_SECOND), String(BALLAST)]);
    held.push(churn);
    expect(await churn.nextLine(60_000), churn.stderr).toBe("ready");
    const watcher = ns!.spawn([
      EXECUTABLE, "watch", "--ndjson", "--initial", "-a", "-t", "-u", "--sensor", "ebpf", "--events", "opened,closed,state-changed",
      "--resync", "1", "--interval", "0.2", "--duration", "170",
    ]);
    const events: WatchEvent[] = [];
    try {
      const first = await sentinel(ns!, SENTINEL_HOST, PORT + 1);
      held.push(first.process);
      await readEventsUntil(watcher, events, sentinelSeen(first.clientPort));
      expect(watcher.stderr).not.toMatch(/sensor unavailable/);

      churn.child.stdin!.write("go\n");
      const run = JSON.parse(await churn.nextLine(60_000)) as ClientRun;
      expect(run.connections).toHaveLength(BALLAST + CONNECTIONS);
      // The held ones stay open: closing thousands at once would overflow the sensor's buffer,
      // and what it lost only the resync's dump can tell, a TIME_WAIT being open to a dump.
      const heldPorts = new Set(run.connections.filter((c) => c.mode === "held").map((c) => c.local[1]));
      await waitSettled(ns!, PORT, heldPorts);
      const after = await sentinel(ns!, SENTINEL_HOST, PORT + 2);
      held.push(after.process);
      await readEventsUntil(watcher, events, sentinelSeen(after.clientPort));
      for (let i = 0; i < REFRESHES_AFTER; i++) {
        const s = await sentinel(ns!, SENTINEL_HOST, PORT + 3 + i, "udp");
        held.push(s.process);
        await readEventsUntil(watcher, events, sentinelSeen(s.clientPort, "udp"));
      }
      await finishWatch(watcher, events);

      const sides = new Map<string, { mode: string; side: string }>();
      for (const c of run.connections) {
        const [la, lp] = c.local;
        const [ra, rp] = c.remote;
        sides.set(tupleKey(la, lp, ra, rp), { mode: c.mode, side: "client" });
        sides.set(tupleKey(ra, rp, la, lp), { mode: c.mode, side: "server" });
      }
      const mine = events.filter((e) => e.protocol === "tcp" && (e.localPort === PORT || e.remotePort === PORT) && e.remotePort !== 0);
      const byKey = new Map<string, WatchEvent[]>();
      for (const e of mine) byKey.set(eventKey(e), [...(byKey.get(eventKey(e)) ?? []), e]);
      const problems: string[] = [];
      const tally: Record<string, number> = {};
      const count = (what: string) => (tally[what] = (tally[what] ?? 0) + 1);
      for (const [key, { mode, side }] of sides) {
        const these = byKey.get(key) ?? [];
        const opened = these.filter((e) => e.type === "opened").length;
        const closed = these.filter((e) => e.type === "closed").length;
        const closes = mode === "held" ? 0 : 1;
        if (opened !== 1) count(`${side} ${mode} opened ${opened}`);
        if (closed !== closes) count(`${side} ${mode} closed ${closed}`);
        if (opened !== 1 || closed !== closes) problems.push(`${side} ${mode} ${key}: opened ${opened}, closed ${closed}\n${describeEvents(these)}`);
      }
      const strangers = mine.filter((e) => !sides.has(eventKey(e)));
      if (strangers.length > 0) count(`strangers ${strangers.length}`);
      expect({ tally, strangers: describeEvents(strangers.slice(0, 10)), problems: problems.slice(0, 6).join("\n") }).toEqual({ tally: {}, strangers: "", problems: "" });
    } finally {
      await watcher.stop();
      for (const p of held) await p.stop();
    }
  });
});
