/**
 * `list --record FILE` saves the raw netlink replies; `list --replay FILE` lists from them
 * elsewhere: the same endpoints (without owners, which live in /proc and are not recorded).
 *
 * Needs root (network namespace) and a built dist/sockwarden.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Netns, requireRoot } from "./helpers/netns.ts";
import { EXECUTABLE, requireExecutable } from "./helpers/sockwarden.ts";
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
    const strip = (e: Record<string, unknown>) => ({ ...e, process: null, pids: [] });
    const a = (JSON.parse(live.stdout) as Record<string, unknown>[]).map(strip);
    const b = JSON.parse(replayed.stdout) as Record<string, unknown>[];
    expect(b).toEqual(a);
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
    expect(short.stderr.trim()).toMatch(/^sockwarden: netlink datagram has 6 trailing bytes/);
  });
});
