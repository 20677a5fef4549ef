/**
 * What the commands say to a new user (issue 16, items 17 and 18): a process filter that finds
 * nothing here because the process lives in another network namespace says so and how to list
 * it; words after `--` are the positional they stand for; number options quote what was given;
 * `rules test --events -` reads standard input; `close -q` is quiet.
 *
 * Needs root (network namespace) and a built dist/sockwarden.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { type BackgroundProcess, Netns, describeRun, requireRoot, run } from "./helpers/netns.ts";
import { EXECUTABLE, REPO_ROOT, requireExecutable } from "./helpers/sockwarden.ts";
import { PYTHON } from "./helpers/scenario.ts";

/** A process name no other process on the box has (comm holds 15 characters). */
const NAME = `swh${process.pid % 100000}x`;
const HOLDER = [
  "import ctypes, socket, sys, select",
  `ctypes.CDLL(None).prctl(15, b"${NAME}", 0, 0, 0)`,
  "l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen()",
  "c = socket.create_connection(l.getsockname()); a, _ = l.accept()",
  "print(l.getsockname()[1], flush=True)",
  "select.select([sys.stdin], [], [], 120)",
].join("\n");

let ns: Netns | undefined;
let holder: BackgroundProcess;
let port: number;
let dir: string;

beforeAll(async () => {
  requireRoot();
  requireExecutable();
  ns = await Netns.create("wd");
  holder = ns.spawn([PYTHON, "-c", HOLDER]);
  port = Number(await holder.nextLine(15_000));
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "sw-wording-"));
});

afterAll(async () => {
  await holder?.stop();
  await ns?.dispose();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const sw = (args: string[], input?: string) => run([EXECUTABLE, ...args], { timeoutMs: 20_000, input });
const lines = (text: string) => text.split("\n").filter(Boolean);

describe("a process in another network namespace", () => {
  it("list NAME from outside says where it is and how to list it", async () => {
    const r = await sw(["list", "-n", NAME]);
    expect(r.code, describeRun(r)).toBe(0);
    expect(lines(r.stdout)).toHaveLength(1);
    expect(lines(r.stderr)).toContain(
      `note: '${NAME}' has 2 such endpoint(s) in another network namespace, ${ns!.name}, none here; list them with -N, or --netns ${ns!.name}`,
    );
    const pid = holder.child.pid!;
    const byPid = await sw(["list", "-a", "-n", String(pid)]);
    expect(lines(byPid.stderr).some((l) => l.startsWith(`note: process ${pid} has 3 such endpoint(s) in another network namespace, ${ns!.name}`))).toBe(true);
  });

  it("--netns NAME lists that namespace's endpoints, as the note says", async () => {
    const r = await sw(["list", "-n", "--json", "--netns", ns!.name, NAME]);
    expect(r.code, describeRun(r)).toBe(0);
    const listed = JSON.parse(r.stdout) as { localPort: number; remotePort: number; namespace: { name: string } }[];
    expect(listed).toHaveLength(2);
    for (const e of listed) expect(e.namespace.name).toBe(ns!.name);
    expect(listed.filter((e) => e.localPort === port || e.remotePort === port)).toHaveLength(2);
    expect(r.stderr).toBe("");
  });

  it("-q keeps the note out", async () => {
    const r = await sw(["list", "-q", NAME]);
    expect(r.stderr).toBe("");
  });
});

describe("words after --", () => {
  it("fill the process positional", async () => {
    const plain = await ns!.exec([EXECUTABLE, "list", "-n", "--json", NAME]);
    const dashed = await ns!.exec([EXECUTABLE, "list", "-n", "--json", "--", NAME]);
    expect(dashed.code, describeRun(dashed)).toBe(0);
    expect(JSON.parse(dashed.stdout)).toHaveLength(2);
    expect(JSON.parse(dashed.stdout)).toEqual(JSON.parse(plain.stdout));
    // It filters: another name after -- lists none of the holder's endpoints.
    const other = await ns!.exec([EXECUTABLE, "list", "-n", "--json", "-q", "--", `${NAME}-other`]);
    expect([other.code, JSON.parse(other.stdout)]).toEqual([0, []]);
  });

  it("a negative number is no PID, and a word too many is refused", async () => {
    const negative = await sw(["list", "--", "-1"]);
    expect([negative.code, negative.stdout, negative.stderr]).toEqual([2, "", "sockwarden: bad PID '-1'\n"]);
    const extra = await sw(["list", NAME, "--", "more"]);
    expect([extra.code, extra.stdout, extra.stderr]).toEqual([2, "", "sockwarden: unknown argument: more\n"]);
  });
});

describe("number options quote what was given", () => {
  it.each([
    [["close", "--pid", "abc"], "--pid takes a whole number from 1 up, not 'abc'"],
    [["close", "--pid", "5", "--pid", "0"], "--pid takes a whole number from 1 up, not '0'"],
    [["list", "--dns-budget", "abc"], "--dns-budget takes a whole number of milliseconds from 0 to 60000, not 'abc'"],
    [["list", "--dns-budget", "1e9"], "--dns-budget takes a whole number of milliseconds from 0 to 60000, not '1e9'"],
  ])("%j", async (args, message) => {
    const r = await sw(args);
    expect([r.code, r.stdout, r.stderr]).toEqual([2, "", `sockwarden: ${message}\n`]);
  });
});

describe("rules test --events -", () => {
  it("reads the events from standard input, as from the file", async () => {
    const file = path.join(REPO_ROOT, "test/fixtures/events/smtp.ndjson");
    const fromFile = await sw(["rules", "test", "smtp-guard", "--events", file]);
    expect(fromFile.code, describeRun(fromFile)).toBe(0);
    expect(lines(fromFile.stdout).length).toBeGreaterThan(0);
    const fromStdin = await sw(["rules", "test", "smtp-guard", "--events", "-"], fs.readFileSync(file, "utf8"));
    expect([fromStdin.code, fromStdin.stdout]).toEqual([0, fromFile.stdout]);
    const before = await sw(["rules", "test", "--events", "-", "smtp-guard"], fs.readFileSync(file, "utf8"));
    expect([before.code, before.stdout]).toEqual([0, fromFile.stdout]);
    const bad = await sw(["rules", "test", "smtp-guard", "--events", "-"], "not json\n");
    expect([bad.code, bad.stderr]).toEqual([3, "sockwarden: standard input:1: not a JSON line\n"]);
  });
});

describe("close -q", () => {
  it("prints nothing but errors; the audit log has the record", async () => {
    const log = path.join(dir, "audit.log");
    const loud = await ns!.exec([EXECUTABLE, "close", "--dry-run", "--state", "listen", "--port", String(port), "--audit-log", log]);
    expect(loud.code, describeRun(loud)).toBe(0);
    expect(loud.stdout).toMatch(/^would close tcp 127\.0\.0\.1:\d+ -> 0\.0\.0\.0:0/);
    const quiet = await ns!.exec([EXECUTABLE, "close", "-q", "--dry-run", "--state", "listen", "--port", String(port), "--audit-log", log]);
    expect([quiet.code, quiet.stdout, quiet.stderr]).toEqual([0, "", ""]);
    expect(lines(fs.readFileSync(log, "utf8")).map((l) => JSON.parse(l).action)).toEqual(["would-close", "would-close"]);
  });
});
