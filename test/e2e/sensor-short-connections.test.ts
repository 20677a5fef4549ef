/**
 * Plain `watch --sensor ebpf --ndjson` (no -a) through 200 connections of about 1 ms each from a
 * process named `beacon`, in a network namespace made here: every one is reported opened and
 * closed, on both sides, with the addresses and ports the client itself read with getsockname and
 * getpeername, beacon's name and pid on its side and the listener's on the accepted side —
 * whether the connection was reset, closed normally or closed by the server first, and whether
 * the listener started before the watcher (its process comes from the listing) or after (the
 * sensor saw it listen). And a connection made on the very 4-tuple of one reset just before (the
 * kernel hands a freed port out again at once) is reported like any other.
 *
 * The order of things is shown by sentinel connections, never by timing. Polling alone
 * (`--sensor poll`) fails this test: it sees none of these connections.
 *
 * Needs root (network namespaces, the sensor's capabilities) and a built dist/sockwarden.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BackgroundProcess, Netns, describeRun, requireRoot } from "./helpers/netns.ts";
import { EXECUTABLE, requireExecutable } from "./helpers/sockwarden.ts";
import {
  type WatchEvent,
  describeEvents,
  eventKey,
  finishWatch,
  readEventsUntil,
  openByEvents,
  runClient,
  sentinel,
  sentinelSeen,
  startBurst,
  startServer,
  tupleKey,
  waitSettled,
} from "./helpers/sensor-watch.ts";

const SERVER_HOST = "10.77.0.1";
const CLIENT_HOST = "10.77.0.2";
const SENTINEL_HOST = "127.0.0.1";
const CONNECTIONS = 200;

let ns: Netns | undefined;

beforeAll(async () => {
  requireRoot("The short-connection sensor test");
  requireExecutable();
  ns = await Netns.create("short");
  for (const address of [SERVER_HOST, CLIENT_HOST]) {
    const added = await ns.exec(["ip", "addr", "add", `${address}/32`, "dev", "lo"], { timeoutMs: 5_000 });
    expect(added.code, describeRun(added)).toBe(0);
  }
});

afterAll(async () => {
  await ns?.dispose();
});

describe("watch --sensor ebpf, 200 one-millisecond connections", { timeout: 180_000 }, () => {
  it.each([
    { listener: "before", port: 7800, sentinelPort: 7810 },
    { listener: "after", port: 7820, sentinelPort: 7830 },
  ])("are all reported with beacon's name and their addresses; listener started $listener the watcher", async ({ listener, port, sentinelPort }) => {
    const held: BackgroundProcess[] = [];
    let server = listener === "before" ? await startServer(ns!, "sw-listener", SERVER_HOST, port) : null;
    if (server) held.push(server.process);
    // --initial: the first sentinel is reported whether the first look saw it or a change after it.
    const watcher = ns!.spawn([EXECUTABLE, "watch", "--ndjson", "--initial", "-t", "-u", "--sensor", "ebpf", "--interval", "1", "--duration", "170"]);
    const events: WatchEvent[] = [];
    try {
      const first = await sentinel(ns!, SENTINEL_HOST, sentinelPort);
      held.push(first.process);
      await readEventsUntil(watcher, events, sentinelSeen(first.clientPort));
      expect(watcher.stderr).not.toMatch(/sensor unavailable/);
      if (!server) {
        server = await startServer(ns!, "sw-listener", SERVER_HOST, port);
        held.push(server.process);
      }
      const beacon = await runClient(ns!, { name: "beacon", host: SERVER_HOST, port, count: CONNECTIONS, bindHost: CLIENT_HOST, pattern: "mixed", holdMs: 1 });
      // The server has closed its side of each; then a held connection (reported after every
      // change before it) and two refreshes (a connected UDP socket is seen by snapshots only):
      // whatever a snapshot could add about the burst has come by then.
      await waitSettled(ns!, port);
      const after = await sentinel(ns!, SENTINEL_HOST, sentinelPort + 1);
      held.push(after.process);
      await readEventsUntil(watcher, events, sentinelSeen(after.clientPort));
      for (const offset of [2, 3]) {
        const s = await sentinel(ns!, SENTINEL_HOST, sentinelPort + offset, "udp");
        held.push(s.process);
        await readEventsUntil(watcher, events, sentinelSeen(s.clientPort, "udp"));
      }
      await finishWatch(watcher, events);

      const modes = new Map<string, number>();
      for (const c of beacon.connections) modes.set(c.mode, (modes.get(c.mode) ?? 0) + 1);
      expect(Object.fromEntries(modes)).toEqual({ normal: 50, reset: 100, peer: 50 });
      const clientKeys = new Set<string>();
      const problems: string[] = [];
      // A reset frees its port at once and the kernel may hand it out again within the burst: a
      // 4-tuple used by n of the connections is opened and closed n times.
      const uses = new Map<string, number>();
      for (const c of beacon.connections) {
        const key = tupleKey(c.local[0], c.local[1], c.remote[0], c.remote[1]);
        uses.set(key, (uses.get(key) ?? 0) + 1);
      }
      const checked = new Set<string>();
      for (const c of beacon.connections) {
        const [localAddress, localPort] = c.local;
        const [remoteAddress, remotePort] = c.remote;
        expect([localAddress, remoteAddress, remotePort]).toEqual([CLIENT_HOST, SERVER_HOST, port]);
        const sides = [
          { key: tupleKey(localAddress, localPort, remoteAddress, remotePort), pid: beacon.pid, name: "beacon" },
          { key: tupleKey(remoteAddress, remotePort, localAddress, localPort), pid: server.pid, name: "sw-listener" },
        ];
        clientKeys.add(sides[0]!.key);
        const times = uses.get(sides[0]!.key)!;
        for (const side of sides) {
          if (checked.has(side.key)) continue;
          checked.add(side.key);
          const mine = events.filter((e) => e.protocol === "tcp" && eventKey(e) === side.key);
          const opened = mine.filter((e) => e.type === "opened").length;
          const closed = mine.filter((e) => e.type === "closed").length;
          const strangers = mine.filter((e) => e.process?.pid !== side.pid || e.process?.name !== side.name);
          if (opened !== times || closed !== times || strangers.length > 0) {
            problems.push(`${c.mode} ${side.key} (${side.name}): opened ${opened}, closed ${closed}\n${describeEvents(mine)}`);
          }
        }
      }
      expect(problems.slice(0, 10).join("\n"), `${problems.length} of ${2 * CONNECTIONS} sides`).toBe("");
      // Nothing of beacon's under other addresses (a reset reported as 0.0.0.0 or port 0, say).
      const elsewhere = events.filter((e) => e.process?.pid === beacon.pid && !clientKeys.has(eventKey(e)));
      expect(describeEvents(elsewhere)).toBe("");
    } finally {
      await watcher.stop();
      for (const p of held) await p.stop();
    }
  });

  it("a connection on the 4-tuple of one reset just before is reported too", async () => {
    // The kernel hands a port out again as soon as a reset frees it: a busy client reaches the
    // same server from the same port within seconds. Plain watch asks for no counters, so
    // between resyncs (an hour here) only the sensor can tell of it.
    const port = 7840;
    const clientPort = 20_001;
    const held: BackgroundProcess[] = [];
    const server = await startServer(ns!, "sw-listener", SERVER_HOST, port);
    held.push(server.process);
    const watcher = ns!.spawn([EXECUTABLE, "watch", "--ndjson", "--initial", "-t", "--sensor", "ebpf", "--events", "opened,closed,state-changed", "--resync", "3600", "--duration", "170"]);
    const events: WatchEvent[] = [];
    try {
      const first = await sentinel(ns!, SENTINEL_HOST, port + 1);
      held.push(first.process);
      await readEventsUntil(watcher, events, sentinelSeen(first.clientPort));
      const reuse = await startBurst(ns!, { name: "beacon", host: SERVER_HOST, port, count: 3, bindHost: CLIENT_HOST, firstPort: clientPort, pattern: "reuse" });
      held.push(reuse.process);
      expect(reuse.run.connections.map((c) => [c.local[1], c.mode])).toEqual([[clientPort, "reset"], [clientPort, "reset"], [clientPort, "held"]]);
      const key = tupleKey(CLIENT_HOST, clientPort, SERVER_HOST, port);
      const after = await sentinel(ns!, SENTINEL_HOST, port + 2);
      held.push(after.process);
      await readEventsUntil(watcher, events, sentinelSeen(after.clientPort));
      await finishWatch(watcher, events);
      const mine = events.filter((e) => e.protocol === "tcp" && eventKey(e) === key);
      expect({ opened: mine.filter((e) => e.type === "opened").length, closed: mine.filter((e) => e.type === "closed").length, open: openByEvents(events).has(key) }, describeEvents(mine)).toEqual({
        opened: 3,
        closed: 2,
        open: true,
      });
      expect(mine.filter((e) => e.process?.pid !== reuse.run.pid)).toEqual([]);
    } finally {
      await watcher.stop();
      for (const p of held) await p.stop();
    }
  });
});
