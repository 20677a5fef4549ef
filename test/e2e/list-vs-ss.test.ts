/**
 * `sockwarden list -a --json` against `ss -tuanpH` in a private namespace running the socket
 * scenario: the same endpoints (protocol, family, addresses, ports, state) and the same pids,
 * exactly; then the same for the /proc/net fallback (`--source proc`).
 *
 * Needs root (network namespace, raw socket in the scenario) and a built dist/sockwarden.
 */

import { readdirSync, readlinkSync, realpathSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findDescribed, keyWithPids, sortedKeys, stableAgainstSs, type StableSnapshot } from "./helpers/compare.ts";
import { Netns, requireRoot } from "./helpers/netns.ts";
import { PYTHON, SCENARIO_SCRIPT, type Scenario, startScenario } from "./helpers/scenario.ts";
import { ISO_8601, checkEndpointShape } from "./helpers/shape.ts";
import { type JsonEndpoint, listJson, requireExecutable } from "./helpers/sockwarden.ts";

let ns: Netns | undefined;
let scenario: Scenario;
let loopbackIndex: number;

beforeAll(async () => {
  requireRoot();
  requireExecutable();
  ns = await Netns.create("l");
  scenario = await startScenario(ns);
  const link = await ns.exec(["ip", "-o", "link", "show", "lo"]);
  loopbackIndex = Number(/^(\d+):/.exec(link.stdout)?.[1]);
});

afterAll(async () => {
  await ns?.dispose();
});

/** Runs `take` once and shares the result between the tests of one describe block. */
function once<T>(take: () => Promise<T>): () => Promise<T> {
  let promise: Promise<T> | undefined;
  return () => (promise ??= take());
}

/** The socket inodes a process holds, from its /proc/<pid>/fd links. */
function socketInodes(pid: number): Set<number> {
  const inodes = new Set<number>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match) inodes.add(Number(match[1]));
    } catch {
      // The fd was closed while reading.
    }
  }
  return inodes;
}

/** Checks that apply to both sources. */
function commonChecks(snapshot: () => Promise<StableSnapshot<JsonEndpoint[]>>) {
  it("lists exactly the endpoints and pids that ss lists", async () => {
    scenario.assertTimeWaitAlive();
    const { ss, result } = await snapshot();
    expect(sortedKeys(result, keyWithPids)).toEqual(sortedKeys(ss, keyWithPids));
  });

  it("includes every socket the scenario describes, with its pids", async () => {
    const { result } = await snapshot();
    for (const described of scenario.description.sockets) {
      const found = findDescribed(result, described);
      expect([...found.pids].sort((a, b) => a - b), described.name).toEqual(described.pids);
    }
  });

  it("gives every endpoint the documented fields and types", async () => {
    const { result } = await snapshot();
    expect(result.length).toBeGreaterThan(0);
    for (const endpoint of result) checkEndpointShape(endpoint);
  });

  it("reports sockets nobody holds as unowned", async () => {
    const { result } = await snapshot();
    for (const name of ["timewait4", "timewait6", "synrecv", "queued-server"]) {
      const found = findDescribed(result, scenario.socket(name));
      expect(found.process, name).toBeNull();
      expect(found.pids, name).toEqual([]);
      expect(found.inode, name).toBe(0);
    }
  });

  it("gives owned sockets the inode their processes hold", async () => {
    const { result } = await snapshot();
    const owned = result.filter((e) => e.pids.length > 0);
    expect(owned.length).toBeGreaterThan(0);
    const held = new Map<number, Set<number>>();
    for (const endpoint of owned) {
      expect(endpoint.inode).toBeGreaterThan(0);
      for (const pid of endpoint.pids) {
        if (!held.has(pid)) held.set(pid, socketInodes(pid));
        expect(held.get(pid)?.has(endpoint.inode), `pid ${pid} holds inode ${endpoint.inode}`).toBe(true);
      }
      expect(endpoint.uid).toBe(0);
      expect(endpoint.user).toBe("root");
    }
  });

  it("describes the scenario's python process", async () => {
    const { result } = await snapshot();
    const { pid } = scenario.description;
    const listener = findDescribed(result, scenario.socket("listen4"));
    const p = listener.process;
    expect(p).not.toBeNull();
    expect(p?.pid).toBe(pid);
    expect(p?.name).toBe("python3");
    expect(p?.path).toBe(realpathSync(PYTHON));
    expect(p?.cmdline).toContain(PYTHON);
    expect(p?.cmdline).toContain(SCENARIO_SCRIPT);
    expect(p?.uid).toBe(0);
    expect(p?.user).toBe("root");
    // `ip netns exec` replaces itself with the command: the scenario is this process's child.
    expect(p?.ppid).toBe(process.pid);
    expect(p?.startTime).toMatch(ISO_8601);
    const started = Date.parse(p?.startTime ?? "");
    // Process start times come from boot time plus clock ticks: allow a few seconds of rounding.
    expect(started).toBeGreaterThanOrEqual(scenario.startedAt - 3_000);
    expect(started).toBeLessThanOrEqual(Date.now() + 3_000);
  });

  it("names the peer and the forked child that shares a listener", async () => {
    const { result } = await snapshot();
    const { pid, peerPid, childPid } = scenario.description;
    const peerSocket = findDescribed(result, scenario.socket("established6-client"));
    expect(peerSocket.process?.pid).toBe(peerPid);
    expect(peerSocket.process?.name).toBe("swpeer");
    expect(peerSocket.process?.cmdline).toContain("--peer");
    expect(peerSocket.process?.ppid).toBe(pid);

    const shared = findDescribed(result, scenario.socket("shared-listen4"));
    expect([...shared.pids].sort((a, b) => a - b)).toEqual([pid, childPid].sort((a, b) => a - b));
    expect([pid, childPid]).toContain(shared.process?.pid);
    expect(shared.process?.name).toBe("python3");
  });
}

describe("list -a --json (netlink)", () => {
  const snapshot = once(() => stableAgainstSs(ns!, () => listJson(ns!, ["-a"])));

  commonChecks(snapshot);

  it("gives TCP counters for established connections", async () => {
    const { result } = await snapshot();
    const established = result.filter((e) => e.protocol === "tcp" && e.state === "ESTABLISHED");
    expect(established.length).toBeGreaterThanOrEqual(8);
    for (const e of established) {
      const where = `${e.localAddress}:${e.localPort} -> ${e.remoteAddress}:${e.remotePort}`;
      for (const field of ["bytesSent", "bytesReceived", "packetsSent", "packetsReceived", "rttMs"] as const) {
        expect(typeof e[field], `${where}: ${field}`).toBe("number");
      }
    }

    // Known payload: the client sent 100 bytes, the server 200. The kernel's acked-bytes counter
    // may also count the SYN, hence one byte of slack.
    const within = (value: number | null, bytes: number) => {
      expect(value).toBeGreaterThanOrEqual(bytes);
      expect(value).toBeLessThanOrEqual(bytes + 1);
    };
    const described = scenario.socket("established4-server");
    const server = findDescribed(result, described);
    const client = findDescribed(result, scenario.socket("established4-client"));
    within(server.bytesSent, described.bytesSent ?? -1);
    within(server.bytesReceived, described.bytesReceived ?? -1);
    within(client.bytesSent, described.bytesReceived ?? -1);
    within(client.bytesReceived, described.bytesSent ?? -1);
    expect(server.packetsSent).toBeGreaterThan(0);
    expect(client.packetsSent).toBeGreaterThan(0);
  });

  it("gives the queue lengths ss gives for connections", async () => {
    const { ss, result } = await snapshot();
    const client = findDescribed(result, scenario.socket("established4-client"));
    expect(client.receiveQueue).toBe(scenario.socket("established4-client").receiveQueue);
    for (const entry of ss.filter((e) => e.protocol === "tcp" && e.state === "ESTABLISHED")) {
      const found = findDescribed(result, entry);
      expect(found.receiveQueue, `receive queue of port ${found.localPort}`).toBe(entry.receiveQueue);
      expect(found.sendQueue, `send queue of port ${found.localPort}`).toBe(entry.sendQueue);
    }
  });

  it("reports the interface a socket is bound to, as ss does", async () => {
    const { ss, result } = await snapshot();
    expect(loopbackIndex).toBeGreaterThan(0);
    expect(findDescribed(result, scenario.socket("udp4-device")).interfaceIndex).toBe(loopbackIndex);
    for (const entry of ss) {
      // The namespace has only lo, so any interface ss names is lo.
      const expected = entry.localInterface === null ? 0 : loopbackIndex;
      expect(findDescribed(result, entry).interfaceIndex, `interface of ${entry.localAddress}:${entry.localPort}`).toBe(
        expected,
      );
    }
  });

  it("gives every socket a distinct cookie", async () => {
    const { result } = await snapshot();
    const cookies = result.map((e) => e.cookie);
    expect(cookies.every((c) => typeof c === "string")).toBe(true);
    expect(new Set(cookies).size).toBe(cookies.length);
  });
});

describe("list -a --json --source proc (the /proc/net fallback)", () => {
  const snapshot = once(() => stableAgainstSs(ns!, () => listJson(ns!, ["-a", "--source", "proc"])));

  commonChecks(snapshot);

  it("agrees with the netlink listing on endpoints and pids", async () => {
    scenario.assertTimeWaitAlive();
    const proc = (await snapshot()).result;
    const { result: netlink } = await stableAgainstSs(ns!, () => listJson(ns!, ["-a"]));
    expect(sortedKeys(proc, keyWithPids)).toEqual(sortedKeys(netlink, keyWithPids));
  });
});
