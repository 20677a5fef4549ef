/**
 * `sockwarden lsit`: a first word close to a command's name that names no process holding an
 * endpoint is told as a mistyped command (one line on stderr, exit 2, nothing listed); a process
 * of that name, or a word close to no command, is still the positional process filter. Run in a
 * private namespace, whose endpoints are exactly known, piped (so not the live view).
 *
 * Needs root (network namespace) and a built dist/sockwarden.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BackgroundProcess, Netns, describeRun, requireRoot } from "./helpers/netns.ts";
import { PYTHON } from "./helpers/scenario.ts";
import { requireExecutable, runSockwarden } from "./helpers/sockwarden.ts";

// A listener whose process is named "clsoe" (its kernel name, as ps shows it).
const NAMED = [
  "import ctypes, socket, sys, select",
  "ctypes.CDLL(None).prctl(15, b'clsoe', 0, 0, 0)",
  "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()",
  "print(s.getsockname()[1], flush=True)",
  "select.select([sys.stdin], [], [], 120)",
].join("\n");

let ns: Netns | undefined;
let named: BackgroundProcess;
let port: number;

beforeAll(async () => {
  requireRoot();
  requireExecutable();
  ns = await Netns.create("mc");
  named = ns.spawn([PYTHON, "-c", NAMED]);
  port = Number(await named.nextLine(15_000));
  expect(port).toBeGreaterThan(0);
});

afterAll(async () => {
  await named?.stop();
  await ns?.dispose();
});

describe("a mistyped command", () => {
  it.each([
    ["lsit", "`sockwarden list`"],
    ["wacth", "`sockwarden watch`"],
    ["li", "`sockwarden list` or `sockwarden live`"],
    ["complet", "`sockwarden completion`"],
  ])("`sockwarden %s` says which command was meant, exit 2, and lists nothing", async (word, meant) => {
    const r = await runSockwarden(ns!, [word]);
    expect(r.code, describeRun(r)).toBe(2);
    expect(r.stderr).toBe(`sockwarden: no process named '${word}'; did you mean ${meant}?\n`);
    expect(r.stdout).toBe("");
  });

  it("a process of that name holding an endpoint keeps the word a process filter", async () => {
    const all = await runSockwarden(ns!, ["-a", "-n", "clsoe"]);
    expect(all.code, describeRun(all)).toBe(0);
    expect(all.stderr).toBe("");
    expect(all.stdout).toMatch(new RegExp(`127\\.0\\.0\\.1:${port} .*LISTEN .*/clsoe`));
    // Its only endpoint is a listener, so the default listing is empty, and still no hint.
    const connected = await runSockwarden(ns!, ["clsoe"]);
    expect(connected.code, describeRun(connected)).toBe(0);
    expect(connected.stderr).toBe("");
  });

  it("a word close to no command is a process filter that matched nothing, as before", async () => {
    const r = await runSockwarden(ns!, ["-a", "nginx"]);
    expect(r.code, describeRun(r)).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout.trim().split("\n")).toHaveLength(1);
  });

  it("`list lsit` is what was asked for: a process filter", async () => {
    const r = await runSockwarden(ns!, ["list", "lsit"]);
    expect(r.code, describeRun(r)).toBe(0);
    expect(r.stderr).toBe("");
  });
});
