/**
 * `list --record FILE` saves the raw netlink replies and the owners /proc showed; `list --replay
 * FILE` lists from them elsewhere: the same endpoints, with the recorded processes even after
 * they exited. A recording without owners still replays, with a note that it has none.
 *
 * Needs root (network namespace) and a built dist/sockwarden.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Netns, requireRoot, run } from "./helpers/netns.ts";
import { EXECUTABLE, requireExecutable } from "./helpers/sockwarden.ts";
import { PYTHON } from "./helpers/scenario.ts";
import { startScenario, type Scenario } from "./helpers/scenario.ts";

let ns: Netns | undefined;
let scenario: Scenario;
let dir: string;

beforeAll(async () => {
  requireRoot();
  requireExecutable();
  ns = await Netns.create("r");
  scenario = await startScenario(ns);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "sw-replay-"));
});

afterAll(async () => {
  await ns?.dispose();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe("record and replay", () => {
  it("replaying a recording lists what was recorded", async () => {
    const file = path.join(dir, "dump.ndjson");
    // The count below includes the scenario's TIME_WAIT sockets, which the kernel keeps 60 s.
    scenario.assertTimeWaitAlive();
    const live = await ns!.exec([EXECUTABLE, "list", "-a", "--json", "-q", "--record", file], { timeoutMs: 20_000 });
    expect(live.code, live.stderr).toBe(0);
    expect(fs.statSync(file).size).toBeGreaterThan(0);
    // Replayed outside the namespace: nothing of the live box gets in.
    const replayed = await ns!.exec([EXECUTABLE, "list", "-a", "--json", "-q", "--replay", file], { timeoutMs: 20_000 });
    expect(replayed.code, replayed.stderr).toBe(0);
    const a = JSON.parse(live.stdout) as Record<string, unknown>[];
    const b = JSON.parse(replayed.stdout) as Record<string, unknown>[];
    expect(b).toEqual(a);
    expect(b.some((e) => e.process !== null)).toBe(true);
    expect(b.length).toBe(scenario.description.sockets.length);
  });

  it("a damaged recording is refused with the line that is wrong", async () => {
    const file = path.join(dir, "bad.ndjson");
    fs.writeFileSync(file, '{"family":2,"protocol":6,"data":"AAAA"}\nnot json\n');
    const r = await ns!.exec([EXECUTABLE, "list", "-a", "--replay", file], { timeoutMs: 10_000 });
    expect(r.code).toBe(3);
    expect(r.stderr.trim()).toBe(`sockwarden: ${file}:2: not a JSON line`);
    fs.writeFileSync(file, '{"family":2,"protocol":6,"data":"AAAAAAAA"}\n');
    const short = await ns!.exec([EXECUTABLE, "list", "-a", "--replay", file], { timeoutMs: 10_000 });
    expect(short.code).toBe(3);
    expect(short.stderr.trim().startsWith(`sockwarden: ${file}:1: netlink datagram has 6 trailing bytes`), short.stderr).toBe(true);
  });

  it("a replay shows the recorded process, though it has exited and the replaying box has no such socket", async () => {
    const file = path.join(dir, "owned.ndjson");
    const holder = ns!.spawn([PYTHON, "-c", NAMED_LISTENER]);
    const port = Number(await holder.nextLine(15_000));
    expect(port).toBeGreaterThan(0);
    const live = await ns!.exec([EXECUTABLE, "list", "-a", "--json", "-q", "--record", file, "--port", String(port)], { timeoutMs: 20_000 });
    expect(live.code, live.stderr).toBe(0);
    const pid = holder.pid;
    await holder.stop();
    expect(fs.existsSync(`/proc/${pid}`)).toBe(false);
    // Outside the namespace, where nothing listens on that port.
    const replayed = await run([EXECUTABLE, "list", "-a", "--json", "--replay", file, "--port", String(port)], { timeoutMs: 20_000 });
    expect(replayed.code, replayed.stderr).toBe(0);
    expect(replayed.stderr).toBe("");
    const listed = JSON.parse(replayed.stdout) as { state: string; pids: number[]; process: { pid: number; name: string; cmdline: string } | null }[];
    expect(listed.map((e) => e.state)).toEqual(["LISTEN"]);
    expect(listed[0]!.pids).toEqual([pid]);
    expect(listed[0]!.process?.pid).toBe(pid);
    expect(listed[0]!.process?.name).toBe(OWNER_NAME);
    expect(listed[0]!.process?.cmdline).toContain("prctl");
  });

  it("a recording without owners still replays, and says once that it has no processes", async () => {
    const file = path.join(dir, "old.ndjson");
    const live = await ns!.exec([EXECUTABLE, "list", "-a", "--json", "-q", "--record", file], { timeoutMs: 20_000 });
    expect(live.code, live.stderr).toBe(0);
    // What a recording made before owners were kept looks like: datagram lines only.
    const datagrams = fs.readFileSync(file, "utf8").split("\n").filter((line) => line.startsWith('{"family":'));
    expect(datagrams.length).toBeGreaterThan(0);
    fs.writeFileSync(file, datagrams.join("\n") + "\n");
    const replayed = await run([EXECUTABLE, "list", "-a", "--json", "--replay", file], { timeoutMs: 20_000 });
    expect(replayed.code, replayed.stderr).toBe(0);
    expect(replayed.stderr).toBe(`note: ${file} holds no processes (made by ss -D or by an older sockwarden): no endpoint shows its owner\n`);
    const listed = JSON.parse(replayed.stdout) as { process: unknown; pids: number[] }[];
    expect(listed.length).toBe(JSON.parse(live.stdout).length);
    expect(listed.every((e) => e.process === null && e.pids.length === 0)).toBe(true);
  });
});

/** 14 characters: the kernel keeps 15 of a process name. */
const OWNER_NAME = "recorded-owner";

/** Names itself with prctl(PR_SET_NAME), listens on a port of the kernel's choice, prints it, waits for stdin to close. */
const NAMED_LISTENER = `
import ctypes, socket, sys
ctypes.CDLL(None).prctl(15, ctypes.c_char_p(b"${OWNER_NAME}"), 0, 0, 0)
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
print(s.getsockname()[1], flush=True)
sys.stdin.read()
`;
