/**
 * Text that other people choose, shown to people: a process in a private namespace names itself
 * with prctl(PR_SET_NAME) `ESC[2J ESC]0;t BEL \n"x` and carries control characters in its command
 * line, and a rule's alert, log and close reasons carry ESC, BEL, BS, VT, FF, NUL, CR/LF, C1 CSI,
 * U+2028 and bidi controls. `list` (table, -e, CSV), `proc`, `watch` lines and the daemon's stdout
 * and syslog sinks must show all of it escaped (`\x1b`, `\u{202e}`, a backslash as `\\`), one
 * line per row or record; `list --json` and the file sink keep the exact text.
 *
 * Expected texts are written out here, not computed with the code under test.
 *
 * Needs root (network namespace) and a built dist/sockwarden.
 */
import { describe, expect, it } from "vitest";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { BackgroundProcess, describeRun } from "./helpers/netns.ts";
import { listJson, runSockwarden } from "./helpers/sockwarden.ts";
import { daemonTestbed } from "./helpers/daemon.ts";

const RULE = fileURLToPath(new URL("../fixtures/rules/control-text.ts", import.meta.url));
/** The port the rule watches for. */
const PORT = 7371;
const SYSLOG_PORT = 5514;

/** 13 bytes: fits the kernel's 15-byte task name. */
const NAME = '\x1b[2J\x1b]0;t\x07\n"x';
const NAME_SHOWN = '\\x1b[2J\\x1b]0;t\\x07\\x0a"x';
/** One argument of the process's command line. */
const ARG = '\x1b]0;cmd\x07\u202e\n"y\\x1b';
const ARG_SHOWN = '\\x1b]0;cmd\\x07\\u{202e}\\x0a"y\\\\x1b';
/** The rule's text (test/fixtures/rules/control-text.ts). */
const TEXT = "\u001b[2J\u001b]0;owned\u0007\u0008\u000b\u000c\u0000\r\n<0>forged\u009b31m\u2028\u202eevil\u2066\\x1b";
const TEXT_SHOWN = "\\x1b[2J\\x1b]0;owned\\x07\\x08\\x0b\\x0c\\x00\\x0d\\x0a<0>forged\\x9b31m\\u{2028}\\u{202e}evil\\u{2066}\\\\x1b";

/** What must never reach a terminal or a log line raw (newlines are checked by counting lines). */
const RAW = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff]/;

/** Sets its name, listens on PORT, says "ready" and waits for stdin to close. */
const NAMED_LISTENER = `
import ctypes, socket, sys
ctypes.CDLL(None).prctl(15, ctypes.c_char_p(${JSON.stringify(NAME)}.encode()), 0, 0, 0)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", ${PORT}))
s.listen()
print("ready", flush=True)
sys.stdin.read()
`;

/** Prints each syslog datagram as one JSON string, so the test sees its exact characters. */
const SYSLOG_RECEIVER = `
import json, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", ${SYSLOG_PORT}))
print("ready", flush=True)
while True:
    data, _ = s.recvfrom(65536)
    print(json.dumps(data.decode("utf-8", "surrogateescape")), flush=True)
`;

const bed = daemonTestbed("cc", "sw-control-");

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startListener(): Promise<BackgroundProcess> {
  const p = bed.ns.spawn(["/usr/bin/python3", "-c", NAMED_LISTENER, ARG]);
  bed.running.push(p);
  expect(await p.nextLine(10_000)).toBe("ready");
  return p;
}

/** The line ends with `tail` (the record's message comes last). */
function expectEnds(line: string | undefined, tail: string): void {
  expect(line?.slice(-tail.length), line).toBe(tail);
}

/** Every line (without its newline) free of raw control characters. */
function expectNoRaw(lines: readonly string[], what: string): void {
  for (const line of lines) expect(line, `${what}: ${JSON.stringify(line)}`).not.toMatch(RAW);
}

describe("control characters in process names and command lines", { timeout: 120_000 }, () => {
  it("list, list -e, list --csv, proc and watch show them escaped, one line per row; list --json exactly", async () => {
    const listener = await startListener();
    const pid = listener.pid;

    const json = await listJson(bed.ns, ["-a", "-n"]);
    const mine = json.find((e) => e.localPort === PORT && e.state === "LISTEN");
    expect(mine?.process?.name).toBe(NAME);
    expect(mine?.process?.cmdline).toContain(ARG);

    for (const args of [["-a", "-n"], ["-a", "-n", "-e"], ["-a", "-n", "--extended"]]) {
      const r = await runSockwarden(bed.ns, ["list", ...args]);
      expect(r.code, describeRun(r)).toBe(0);
      const lines = r.stdout.replace(/\n$/, "").split("\n");
      expectNoRaw(lines, `list ${args.join(" ")}`);
      // A header and one line per endpoint: a raw newline would have made one more.
      expect(lines).toHaveLength(json.length + 1);
      expect(lines.find((l) => l.includes(`:${PORT}`))).toContain(`${pid}/${NAME_SHOWN}`);
    }

    const csv = await runSockwarden(bed.ns, ["list", "-a", "-n", "--csv"]);
    expect(csv.code, describeRun(csv)).toBe(0);
    const rows = csv.stdout.replace(/\n$/, "").split("\n");
    expectNoRaw(rows, "list --csv");
    expect(rows).toHaveLength(json.length + 1);
    const row = rows.find((l) => l.includes(`,${PORT},`));
    expect(row).toContain(`,${pid},"${NAME_SHOWN.replaceAll('"', '""')}",`);
    expect(row).toContain(ARG_SHOWN.replaceAll('"', '""'));

    const proc = await runSockwarden(bed.ns, ["proc", String(pid)]);
    expect(proc.code, describeRun(proc)).toBe(0);
    const procLines = proc.stdout.split("\n");
    expectNoRaw(procLines, "proc");
    expect(procLines).toContain(`Name:         ${NAME_SHOWN}`);
    expect(proc.stdout.replace(/\n +/g, " ")).toContain(ARG_SHOWN);

    const watch = await runSockwarden(bed.ns, ["watch", "--initial", "-a", "-n", "--port", String(PORT), "--count", "1"]);
    expect(watch.code, describeRun(watch)).toBe(0);
    const events = watch.stdout.replace(/\n$/, "").split("\n");
    expectNoRaw(events, "watch");
    expect(events).toHaveLength(1);
    expect(events[0]).toContain(`${pid}/${NAME_SHOWN}`);
  });
});

describe("control characters in the daemon's sinks", { timeout: 120_000 }, () => {
  it("stdout and syslog show the rule's texts and the process name escaped; the file sink keeps them exactly", async () => {
    const receiver = bed.ns.spawn(["/usr/bin/python3", "-c", SYSLOG_RECEIVER]);
    bed.running.push(receiver);
    expect(await receiver.nextLine(10_000)).toBe("ready");
    const file = path.join(bed.dir, "records.ndjson");
    const daemon = await bed.startDaemon([
      "--interval", "0.3", "--dry-run", "--rule", RULE, "--audit-log", path.join(bed.dir, "audit.log"),
      "--sink", "stdout", "--sink", `syslog:udp://127.0.0.1:${SYSLOG_PORT}`, "--sink", `file:${file}`,
    ]);

    // Opened after the daemon's first look, so the rule's handler sees it.
    const listener = await startListener();
    const pid = listener.pid;
    const records = () => (fs.existsSync(file) ? fs.readFileSync(file, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)) : []);
    for (const end = performance.now() + 20_000; records().length < 3 && performance.now() < end; ) await sleep(100);
    const exact = records();
    expect(exact.map((r) => r.kind).sort(), daemon.stderr).toEqual(["action", "alert", "log"]);

    // The file sink is JSON: the exact texts.
    expect(exact.find((r) => r.kind === "alert").message).toBe(`alert ${TEXT}`);
    expect(exact.find((r) => r.kind === "log").message).toBe(`log ${TEXT}`);
    expect(exact.find((r) => r.kind === "action").message).toContain(`close ${TEXT}`);
    expect(exact.find((r) => r.kind === "action").process.name).toBe(NAME);

    // Syslog: one datagram per record, nothing raw in it, SD-PARAMs and MSG escaped.
    const datagrams: string[] = [];
    while (datagrams.length < 3) datagrams.push(JSON.parse(await receiver.nextLine(10_000)) as string);
    expectNoRaw(datagrams, "syslog");
    for (const d of datagrams) expect(d).not.toContain("\n");
    expectEnds(datagrams.find((d) => / alert \[/.test(d)), `alert warning control-text: alert ${TEXT_SHOWN}`);
    expectEnds(datagrams.find((d) => / log \[/.test(d)), `log ${TEXT_SHOWN}`);
    const action = datagrams.find((d) => / action \[/.test(d));
    // The action's message names the process (escaped) already, so MSG does not repeat it after
    // the rule's text, as stdout lines do not.
    expectEnds(action, `(${NAME_SHOWN}, pid ${pid}): close ${TEXT_SHOWN}`);
    // PARAM-VALUE escapes on top: '"', '\' and ']' take a backslash.
    const param = (s: string) => s.replace(/[\\"\]]/g, (c) => `\\${c}`);
    expect(action).toContain(` process="${param(NAME_SHOWN)}"`);

    // Stdout: every record one line starting with its time, nothing raw.
    expect(await daemon.terminate(10_000)).toBe(true);
    const lines = daemon.remainingLines();
    expectNoRaw(lines, "daemon stdout");
    for (const line of lines) expect(line).toMatch(/^\d{4}-\d\d-\d\dT/);
    expectEnds(lines.find((l) => / alert warning /.test(l)), `alert warning control-text: alert ${TEXT_SHOWN}`);
    expectEnds(lines.find((l) => / log /.test(l)), `log info control-text: log ${TEXT_SHOWN}`);
    expect(lines.find((l) => / action would-close /.test(l))).toContain(`(${NAME_SHOWN}, pid ${pid}): close ${TEXT_SHOWN}`);
  });
});
