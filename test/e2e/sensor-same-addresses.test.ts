/**
 * The tracepoint the eBPF sensor uses carries no network namespace: `watch --sensor ebpf` run in
 * one namespace (`ip netns exec`) must report its own connections only. Two namespaces made here
 * have the same addresses, the same listener (on 127.0.0.1, started before the watcher, so the
 * sensor never saw it listen, or after it) and clients with the same comm binding the same local
 * ports, so their connections have the very same 4-tuples. First the other namespace's
 * connections alone (none may be reported), then both at once (each of ours exactly once, with
 * our processes).
 *
 * The order of things is shown by sentinel connections, never by timing.
 *
 * Needs root (network namespaces, the sensor's capabilities) and a built dist/sockwarden.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BackgroundProcess, Netns, requireRoot } from "./helpers/netns.ts";
import { EXECUTABLE, requireExecutable } from "./helpers/sockwarden.ts";
import {
  type ClientOptions,
  type WatchEvent,
  describeEvents,
  eventKey,
  finishWatch,
  readEventsUntil,
  runClient,
  sentinel,
  sentinelSeen,
  startServer,
  tupleKey,
  waitSettled,
} from "./helpers/sensor-watch.ts";

const HOST = "127.0.0.1";
const CONNECTIONS = 100;

let ours: Netns | undefined;
let theirs: Netns | undefined;

beforeAll(async () => {
  requireRoot("The sensor's namespace test");
  requireExecutable();
  ours = await Netns.create("nsa");
  theirs = await Netns.create("nsb");
});

afterAll(async () => {
  await ours?.dispose();
  await theirs?.dispose();
});

describe("watch --sensor ebpf in one of two namespaces with the same addresses", { timeout: 180_000 }, () => {
  // Client ports below the ephemeral range: only these clients bind them.
  it.each([
    { listeners: "before", port: 7900, sentinelBase: 7910, alonePorts: 30_000, togetherPorts: 31_000 },
    { listeners: "after", port: 7920, sentinelBase: 7930, alonePorts: 32_000, togetherPorts: 33_000 },
  ])("reports its own connections once each and never the other namespace's; listeners started $listeners the watcher", async ({ listeners, port, sentinelBase, alonePorts, togetherPorts }) => {
    const about = (events: readonly WatchEvent[]) => events.filter((e) => e.protocol === "tcp" && (e.localPort === port || e.remotePort === port));
    const held: BackgroundProcess[] = [];
    const startServers = async () => {
      const servers = await Promise.all([startServer(ours!, "sw-listener", HOST, port), startServer(theirs!, "sw-listener", HOST, port)]);
      held.push(servers[0].process, servers[1].process);
      return servers;
    };
    let servers = listeners === "before" ? await startServers() : null;
    const watcher = ours!.spawn([EXECUTABLE, "watch", "--ndjson", "--initial", "-t", "-u", "--sensor", "ebpf", "--interval", "1", "--duration", "170"]);
    const events: WatchEvent[] = [];
    let sentinelPort = sentinelBase;
    /** A held connection (reported after every change before it), then two refreshes. */
    const caughtUp = async () => {
      const tcp = await sentinel(ours!, HOST, sentinelPort++);
      held.push(tcp.process);
      await readEventsUntil(watcher, events, sentinelSeen(tcp.clientPort));
      for (let i = 0; i < 2; i++) {
        const udp = await sentinel(ours!, HOST, sentinelPort++, "udp");
        held.push(udp.process);
        await readEventsUntil(watcher, events, sentinelSeen(udp.clientPort, "udp"));
      }
    };
    const client = (firstPort: number): ClientOptions => ({ name: "beacon", host: HOST, port: port, count: CONNECTIONS, bindHost: HOST, firstPort, pattern: "mixed", holdMs: 1 });
    try {
      const ready = await sentinel(ours!, HOST, sentinelPort++);
      held.push(ready.process);
      await readEventsUntil(watcher, events, sentinelSeen(ready.clientPort));
      expect(watcher.stderr).not.toMatch(/sensor unavailable/);
      servers ??= await startServers();
      const [ourServer, theirServer] = servers;

      const theirAlone = await runClient(theirs!, client(alonePorts));
      await waitSettled(theirs!, port);
      await caughtUp();
      expect(describeEvents(about(events)), "the other namespace's connections, made alone").toBe("");

      const [ourRun, theirRun] = await Promise.all([runClient(ours!, client(togetherPorts)), runClient(theirs!, client(togetherPorts))]);
      await Promise.all([waitSettled(ours!, port), waitSettled(theirs!, port)]);
      await caughtUp();
      await finishWatch(watcher, events);

      // The very same 4-tuples in both namespaces.
      expect(theirRun.connections.map((c) => [c.local, c.remote])).toEqual(ourRun.connections.map((c) => [c.local, c.remote]));
      const theirPids = new Set([theirAlone.pid, theirRun.pid, theirServer.pid]);
      expect(describeEvents(events.filter((e) => e.process && theirPids.has(e.process.pid)))).toBe("");
      const problems: string[] = [];
      const expected = new Set<string>();
      for (const c of ourRun.connections) {
        const [localAddress, localPort] = c.local;
        const sides = [
          { key: tupleKey(localAddress, localPort, HOST, port), pid: ourRun.pid, name: "beacon" },
          { key: tupleKey(HOST, port, localAddress, localPort), pid: ourServer.pid, name: "sw-listener" },
        ];
        for (const side of sides) {
          expected.add(side.key);
          const mine = events.filter((e) => e.protocol === "tcp" && eventKey(e) === side.key);
          const opened = mine.filter((e) => e.type === "opened").length;
          const closed = mine.filter((e) => e.type === "closed").length;
          const strangers = mine.filter((e) => e.process?.pid !== side.pid || e.process?.name !== side.name);
          if (opened !== 1 || closed !== 1 || strangers.length > 0) {
            problems.push(`${c.mode} ${side.key} (${side.name}): opened ${opened}, closed ${closed}\n${describeEvents(mine)}`);
          }
        }
      }
      expect(problems.slice(0, 10).join("\n"), `${problems.length} of ${2 * CONNECTIONS} sides`).toBe("");
      expect(describeEvents(about(events).filter((e) => !expected.has(eventKey(e))))).toBe("");
    } finally {
      await watcher.stop();
      for (const p of held) await p.stop();
    }
  });
});
