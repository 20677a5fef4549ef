/**
 * A recording's owner lines, read back by a replay: the recorded processes are what the
 * endpoints show (nothing is read from this box's /proc), a damaged line is refused with its
 * place, and a recording without owners says so once.
 */
import { afterEach, describe, expect, test } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { LinuxEngine } from "../../src/engine/linux/linux-engine.ts";
import { ownerLines } from "../../src/engine/linux/recorded-owners.ts";
import type { Endpoint } from "../../src/model/endpoint.ts";
import type { ProcessInfo } from "../../src/model/process.ts";

const RECORDING = path.join(import.meta.dirname, "../fixtures/netlink/dump-basic.ndjson");
const REQUEST = { protocols: new Set(["tcp", "udp"] as const), families: new Set([4, 6] as const), withProcesses: true };

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sw-owners-"));
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function replay(file: string): { endpoints: Endpoint[]; notes: string[] }[] {
  const engine = new LinuxEngine({ source: "replay", replayFile: file });
  try {
    return [engine.snapshot(REQUEST), engine.snapshot(REQUEST)];
  } finally {
    engine.close();
  }
}

function withLines(name: string, lines: readonly string[]): string {
  const file = path.join(dir, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(file, fs.readFileSync(RECORDING, "utf8") + lines.join("\n") + "\n");
  return file;
}

/** A process no box running this test has: a PID past pid_max and a name nothing uses. */
const RECORDED: ProcessInfo = {
  pid: 4_999_999,
  name: "recorded\u001b[2J",
  path: "/opt/elsewhere/bin/server",
  cmdline: "server --port 80",
  uid: 1234,
  user: "someone",
  startTime: "2026-01-02T03:04:05.000Z",
  startId: "987654",
  ppid: 1,
  unit: "server.service",
  container: { runtime: "docker", id: "abc123", pod: null },
};

describe("recorded owners", () => {
  const inodes = replay(RECORDING)[0]!.endpoints.filter((e) => e.inode !== 0).map((e) => e.inode);

  test("the fixture has sockets with inodes to own", () => {
    expect(inodes.length).toBeGreaterThan(1);
  });

  test("a replay shows the recorded owners of each socket, and only of those", () => {
    const [owned, other] = [inodes[0]!, inodes[1]!];
    const file = withLines("owned.ndjson", [
      JSON.stringify({ owners: 1 }),
      JSON.stringify({ socket: owned, pids: [RECORDED.pid, 5_000_000] }),
      JSON.stringify({ process: RECORDED }),
    ]);
    const [first, second] = replay(file);
    for (const snap of [first!, second!]) {
      expect(snap.notes).toEqual([]);
      const ep = snap.endpoints.find((e) => e.inode === owned)!;
      expect(ep.pids).toEqual([RECORDED.pid, 5_000_000]);
      expect(ep.process).toEqual(RECORDED);
      const bare = snap.endpoints.find((e) => e.inode === other)!;
      expect(bare.process).toBeNull();
      expect(bare.pids).toEqual([]);
    }
  });

  test("what ownerLines writes reads back as the same owners", () => {
    const [ep] = replay(RECORDING)[0]!.endpoints.filter((e) => e.inode === inodes[0]);
    const file = withLines("round.ndjson", ownerLines([{ ...ep!, pids: [RECORDED.pid], process: RECORDED }]));
    const back = replay(file)[0]!.endpoints.find((e) => e.inode === inodes[0])!;
    expect(back.pids).toEqual([RECORDED.pid]);
    expect(back.process).toEqual(RECORDED);
  });

  test("a recording without owner lines replays without processes and says so once", () => {
    const [first, second] = replay(RECORDING);
    expect(first!.notes).toEqual([`${RECORDING} holds no processes (made by ss -D or by an older sockwarden): no endpoint shows its owner`]);
    expect(second!.notes).toEqual([]);
    expect(first!.endpoints.every((e) => e.process === null && e.pids.length === 0)).toBe(true);
  });

  test.each([
    ["a socket without pids", { socket: 5, pids: [] }, "expected {socket: inode, pids: [pid, …]}"],
    ["a pid that is not a number", { socket: 5, pids: ["1"] }, "expected {socket: inode, pids: [pid, …]}"],
    ["a process without a name", { process: { ...RECORDED, name: undefined } }, "recorded process has a bad name"],
    ["a process with an unknown runtime", { process: { ...RECORDED, container: { runtime: "vm", id: null, pod: null } } }, "recorded process has a bad container"],
    ["a process that is a string", { process: "nginx" }, "recorded process has a bad record"],
    ["an owners marker that is no count", { owners: "all" }, "expected {owners: count}"],
    ["a line of another kind", { something: 1 }, "expected {family, protocol, data}"],
  ])("refuses %s with its place in the file", (_what, line, message) => {
    const file = withLines("bad.ndjson", [JSON.stringify(line)]);
    const at = fs.readFileSync(file, "utf8").trimEnd().split("\n").length;
    expect(() => replay(file)).toThrow(`${file}:${at}: ${message}`);
  });

  test("fields a recorded process does not have are not kept", () => {
    const file = withLines("extra.ndjson", [
      JSON.stringify({ owners: 1 }),
      JSON.stringify({ socket: inodes[0], pids: [RECORDED.pid] }),
      // A "__proto__" key in JSON is an ordinary field of the parsed object.
      `{"process":{"__proto__":{"polluted":true},${JSON.stringify({ ...RECORDED, extra: "x" }).slice(1)}}`,
    ]);
    const ep = replay(file)[0]!.endpoints.find((e) => e.inode === inodes[0])!;
    expect(ep.process).toEqual(RECORDED);
  });
});
