/**
 * What `watch` writes (issue 16, items 2, 16 and 18): a reader that goes away (`| head -1`) ends
 * watch at its next line with list's exit (0), instead of a "refresh failed" line every interval
 * for ever; `seq` numbers what is printed, from 1 up, whatever the filters drop; number options
 * quote what was typed.
 *
 * Needs root (network namespace) and a built dist/sockwarden.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BackgroundProcess, Netns, describeRun, requireRoot, run } from "./helpers/netns.ts";
import { EXECUTABLE, requireExecutable } from "./helpers/sockwarden.ts";
import { PYTHON } from "./helpers/scenario.ts";

/** Listeners on both sides of 8443, so that 8443's is neither first nor alone; one more per line read. */
const HOLDER = [
  "import socket, sys",
  "held = []",
  "def listen(port):",
  "    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)",
  "    s.bind(('127.0.0.1', port)); s.listen(); held.append(s)",
  "for p in (7001, 7002, 7003, 8443, 9001, 9002): listen(p)",
  "print('ready', flush=True)",
  "for line in sys.stdin:",
  "    listen(0); print('opened', flush=True)",
].join("\n");

let ns: Netns | undefined;
let holder: BackgroundProcess;

beforeAll(async () => {
  requireRoot();
  requireExecutable();
  ns = await Netns.create("wo");
  holder = ns.spawn([PYTHON, "-c", HOLDER]);
  expect(await holder.nextLine(15_000)).toBe("ready");
});

afterAll(async () => {
  await holder?.stop();
  await ns?.dispose();
});

describe("a reader that goes away", () => {
  it("ends watch at its next line, with the exit list has on a closed pipe", async () => {
    // bash reports watch's own exit after the pipeline, on the line after head's.
    const pipeline = `'${EXECUTABLE}' watch -a -n --initial --sensor poll --interval 0.1 | head -1; echo "exit \${PIPESTATUS[0]}"`;
    const watch = ns!.spawn(["bash", "-c", pipeline]);
    expect(await watch.nextLine(15_000)).toMatch(/ tcp +127\.0\.0\.1:\d+ /);
    // head has its line and is gone; each new listener is an event for watch to write. Before the
    // fix watch went on, saying "refresh failed: output closed" each interval.
    for (let i = 0; i < 50 && !watch.hasExited; i++) {
      holder.child.stdin!.write("more\n");
      expect(await holder.nextLine(5_000)).toBe("opened");
      await watch.waitForExit(200);
    }
    expect(watch.hasExited, `still running; stderr:\n${watch.stderr}`).toBe(true);
    expect(watch.remainingLines()).toEqual(["exit 0"]);
    expect(watch.stderr).toBe("");

    // list, and plain sockwarden where it lists, end the same way.
    for (const command of ["list -a -n", "-a -n"]) {
      const list = await ns!.exec(["bash", "-c", `'${EXECUTABLE}' ${command} | head -1 >/dev/null; echo "exit \${PIPESTATUS[0]}"`]);
      expect(list.stdout.trim(), describeRun(list)).toBe("exit 0");
      expect(list.stderr, describeRun(list)).toBe("");
    }
  });
});

describe("seq", () => {
  it("numbers what is printed, from 1 up, whatever the filters drop", async () => {
    const r = await ns!.exec([EXECUTABLE, "watch", "-a", "--ndjson", "--initial", "--sensor", "poll", "--port", "8443,9002", "--count", "2"], {
      timeoutMs: 20_000,
    });
    expect(r.code, describeRun(r)).toBe(0);
    const events = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as { seq: number; localPort: number });
    expect(events.map((e) => e.localPort).sort()).toEqual([8443, 9002]);
    expect(events.map((e) => e.seq)).toEqual([1, 2]);
  });
});

describe("number options", () => {
  const cases: Array<[string[], string]> = [
    [["watch", "--interval", "abc"], "--interval takes a number of seconds from 0.1 to 3600, not 'abc'"],
    [["watch", "--duration", "-5", "--duration", "1"], "--duration takes a number of seconds above 0 up to 10000000, not '-5'"],
    [["watch", "--count", "1.5"], "--count takes a whole number from 1 up, not '1.5'"],
    [["watch", "--resync", "abc"], "--resync takes a number of seconds from 1 to 86400, not 'abc'"],
    [["live", "--interval", "abc"], "--interval takes a number of seconds from 0.1 to 3600, not 'abc'"],
    [["live", "--resync", "0x10"], "--resync takes a number of seconds from 1 to 86400, not '0x10'"],
    [["run", "--rule", "x.ts", "--interval", "abc"], "--interval takes a number of seconds from 0.1 to 3600, not 'abc'"],
    [["run", "--rule", "x.ts", "--resync", "-4"], "--resync takes a number of seconds from 1 to 86400, not '-4'"],
    [["--interval", "abc"], "--interval takes a number of seconds from 0.1 to 3600, not 'abc'"],
  ];
  it.each(cases)("%j: one line quoting what was typed, exit 2", async (args, message) => {
    const r = await run([EXECUTABLE, ...args], { timeoutMs: 20_000 });
    expect(r.code, describeRun(r)).toBe(2);
    expect(r.stderr).toBe(`sockwarden: ${message}\n`);
  });
  it("the last of a repeated option applies", async () => {
    const r = await ns!.exec([EXECUTABLE, "watch", "-a", "--ndjson", "--initial", "--sensor", "poll", "--port", "8443", "--count", "5", "--count", "1"], {
      timeoutMs: 20_000,
    });
    expect(r.code, describeRun(r)).toBe(0);
    expect(r.stdout.trim().split("\n")).toHaveLength(1);
  });
});
