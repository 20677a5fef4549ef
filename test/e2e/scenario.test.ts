/**
 * The fixtures the other end-to-end files stand on: a private namespace, the socket scenario
 * inside it, and ss as the reference. If these disagree, no comparison with sockwarden means
 * anything, so they are checked on their own (this file does not need dist/sockwarden).
 * Needs root.
 */

import { readFileSync, readdirSync, readlinkSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keyWithPids, sortedKeys, stableAgainstSs } from "./helpers/compare.ts";
import { Netns, requireRoot, run } from "./helpers/netns.ts";
import { type Scenario, startScenario } from "./helpers/scenario.ts";
import { ssSnapshot } from "./helpers/ss.ts";

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A process's command line with NULs as spaces, or "<gone>" once it no longer exists. */
function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").trim();
  } catch {
    return "<gone>";
  }
}

describe("network namespace helper", () => {
  beforeAll(() => requireRoot());

  it("runs commands inside a fresh namespace with only lo, and removes it with its processes", async () => {
    const ns = await Netns.create("h");
    let sleeper: number;
    try {
      const links = await ns.exec(["ip", "-o", "link", "show"]);
      expect(links.code).toBe(0);
      const names = links.stdout
        .trim()
        .split("\n")
        .map((line) => line.split(":")[1]?.trim());
      expect(names).toEqual(["lo"]);
      expect(links.stdout).toMatch(/state UNKNOWN|UP/);

      const inside = await ns.exec(["readlink", "/proc/self/ns/net"]);
      expect(inside.stdout.trim()).not.toBe(readlinkSync("/proc/self/ns/net"));

      const background = ns.spawn(["sleep", "300"]);
      sleeper = background.pid;
      // `ip netns exec` replaces itself with sleep shortly after the spawn.
      const deadline = Date.now() + 5_000;
      while (!commandLine(sleeper).startsWith("sleep") && Date.now() < deadline) await pause(20);
      expect(commandLine(sleeper)).toMatch(/^sleep\b/);
    } finally {
      await ns.dispose();
    }
    expect(readdirSync("/run/netns")).not.toContain(ns.name);
    expect(commandLine(sleeper)).toBe("<gone>");
  });

  it("kills a command that overruns its timeout", async () => {
    const started = Date.now();
    const result = await run(["sleep", "30"], { timeoutMs: 300 });
    expect(result.timedOut).toBe(true);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});

describe("socket scenario against ss", () => {
  let ns: Netns | undefined;
  let scenario: Scenario;

  beforeAll(async () => {
    requireRoot();
    ns = await Netns.create("s");
    scenario = await startScenario(ns);
  });

  afterAll(async () => {
    await ns?.dispose();
  });

  it("describes exactly what ss lists, pids included", async () => {
    scenario.assertTimeWaitAlive();
    const { ss } = await stableAgainstSs(ns!, async () => undefined);
    expect(sortedKeys(ss, keyWithPids)).toEqual(sortedKeys(scenario.description.sockets, keyWithPids));
  });

  it("covers the states and address forms the comparisons rely on", () => {
    const sockets = scenario.description.sockets;
    const states = new Set(sockets.map((s) => `${s.protocol}:${s.state}`));
    for (const state of [
      "tcp:LISTEN",
      "tcp:ESTABLISHED",
      "tcp:SYN_SENT",
      "tcp:SYN_RECV",
      "tcp:FIN_WAIT2",
      "tcp:CLOSE_WAIT",
      "tcp:TIME_WAIT",
      "udp:null",
    ]) {
      expect(states, state).toContain(state);
    }
    const addresses = new Set(sockets.map((s) => s.localAddress));
    for (const address of ["127.0.0.1", "0.0.0.0", "::1", "::", "::ffff:127.0.0.1"]) {
      expect(addresses, address).toContain(address);
    }
    const { pid, peerPid, childPid } = scenario.description;
    expect(scenario.socket("shared-listen4").pids).toEqual([pid, childPid].sort((a, b) => a - b));
    expect(sockets.some((s) => s.pids.includes(peerPid))).toBe(true);
    expect(sockets.filter((s) => s.pids.length === 0).map((s) => s.name).sort()).toEqual([
      "queued-server",
      "synrecv",
      "timewait4",
      "timewait6",
    ]);
  });

  it("names its processes as described", async () => {
    const { pid, peerPid, childPid } = scenario.description;
    const comm = (p: number) => readFileSync(`/proc/${p}/comm`, "utf8").trim();
    expect(comm(pid)).toBe("python3");
    expect(comm(childPid)).toBe("python3");
    expect(comm(peerPid)).toBe("swpeer");
    // ip netns exec replaces itself with the command, so the scenario is this process's child.
    const ppid = Number(readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ")[1]);
    expect(ppid).toBe(process.pid);
  });

  it("shows the interface binding and the unread bytes in ss", async () => {
    const ss = await ssSnapshot(ns!);
    const device = scenario.socket("udp4-device");
    expect(ss.find((e) => e.protocol === "udp" && e.localPort === device.localPort)?.localInterface).toBe("lo");
    const client = scenario.socket("established4-client");
    const entry = ss.find((e) => e.protocol === "tcp" && e.localPort === client.localPort);
    expect(entry?.receiveQueue).toBe(client.receiveQueue);
  });

  it("ends every process it started once its input closes", async () => {
    const { pid, peerPid, childPid } = scenario.description;
    await scenario.stop();
    const deadline = Date.now() + 5_000;
    const alive = () => [pid, peerPid, childPid].filter((p) => commandLine(p).includes("python3"));
    while (alive().length > 0 && Date.now() < deadline) await pause(50);
    expect(alive()).toEqual([]);
    expect((await ns!.exec(["ss", "-tuanpH"])).stdout.includes("pid=")).toBe(false);
  });
});
