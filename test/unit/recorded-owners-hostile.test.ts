/**
 * A recording is a file someone was handed: every owner line (and every datagram line) may be
 * crafted. Each case here ends in a correct listing or in one DecodeError that names the file
 * and line, and what a recorded process is called reaches people escaped as a live one does.
 */
import { afterAll, describe, expect, test } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { LinuxEngine } from "../../src/engine/linux/linux-engine.ts";
import { ownerLines } from "../../src/engine/linux/recorded-owners.ts";
import { DecodeError } from "../../src/errors.ts";
import { endpointJsonText } from "../../src/format/endpoint-json.ts";
import type { Endpoint } from "../../src/model/endpoint.ts";
import type { ProcessInfo } from "../../src/model/process.ts";
import { renderCsv } from "../../src/view/endpoint-csv.ts";
import { numericNames } from "../../src/view/endpoint-names.ts";
import { renderEndpointTable } from "../../src/view/endpoint-table.ts";

const FIXTURE = path.join(import.meta.dirname, "../fixtures/netlink/dump-basic.ndjson");
const DATAGRAMS = fs.readFileSync(FIXTURE, "utf8");
const REQUEST = { protocols: new Set(["tcp", "udp"] as const), families: new Set([4, 6] as const), withProcesses: true };

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sw-hostile-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

let files = 0;
function recording(text: string): string {
  const file = path.join(dir, `r${files++}.ndjson`);
  fs.writeFileSync(file, text);
  return file;
}

/** The fixture's datagrams followed by `lines` (objects are written as JSON, strings as they are). */
function withLines(lines: readonly unknown[], eol = "\n"): string {
  return recording(DATAGRAMS + lines.map((l) => (typeof l === "string" ? l : JSON.stringify(l))).join(eol) + eol);
}

function replay(file: string): Endpoint[] {
  const engine = new LinuxEngine({ source: "replay", replayFile: file });
  try {
    return engine.snapshot(REQUEST).endpoints;
  } finally {
    engine.close();
  }
}

/** The 1-based number of the line of `file` that holds `needle`. */
function lineOf(file: string, needle: string): number {
  return fs.readFileSync(file, "utf8").split("\n").findIndex((l) => l.includes(needle)) + 1;
}

/** What replaying `file` threw, checked to be a DecodeError. */
function refusal(file: string): DecodeError {
  let caught: unknown;
  try {
    replay(file);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(DecodeError);
  return caught as DecodeError;
}

/** Replaying `file` fails with one DecodeError line `file:line: message…`. */
function expectRefused(file: string, line: number, message: string | RegExp): void {
  const text = refusal(file).message;
  expect(text).not.toContain("\n");
  expect(text.startsWith(`${file}:${line}: `)).toBe(true);
  if (typeof message === "string") expect(text).toBe(`${file}:${line}: ${message}`);
  else expect(text.slice(`${file}:${line}: `.length)).toMatch(message);
}

const INODES = replay(FIXTURE)
  .filter((e) => e.inode !== 0)
  .map((e) => e.inode);
const OWNED = INODES[0]!;

const PROCESS: ProcessInfo = {
  pid: 4_999_999,
  name: "server",
  path: "/opt/bin/server",
  cmdline: "server --port 80",
  uid: 1000,
  user: "someone",
  startTime: null,
  ppid: 1,
};

/** Owner lines giving the fixture's first socket `process`. */
function ownedBy(process: unknown, pids: unknown = [PROCESS.pid]): unknown[] {
  return [{ owners: 1 }, { socket: OWNED, pids }, { process }];
}

const owned = (file: string) => replay(file).find((e) => e.inode === OWNED)!;

/** Characters that steer a terminal or reorder a line, and what escapeControl shows for each. */
const HOSTILE = "\u001b[2J\u001b]0;owned\u0007\u202e\u2066\u200f\u0000\u0085\r\n\ud800\\";
const SHOWN = "\\x1b[2J\\x1b]0;owned\\x07\\u{202e}\\u{2066}\\u{200f}\\x00\\x85\\x0d\\x0a\\u{d800}\\\\";
// Whatever steers a terminal, escaped or not: C0, DEL, C1, bidi marks and overrides, lone surrogates.
const RAW_CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff\ud800-\udfff]/u;

describe("hostile text in recorded processes", () => {
  const hostile: ProcessInfo = {
    ...PROCESS,
    name: `n${HOSTILE}`,
    path: `/p${HOSTILE}`,
    cmdline: `c${HOSTILE}`,
    user: `u${HOSTILE}`,
    unit: `x${HOSTILE}.service`,
  };
  const file = withLines(ownedBy(hostile));
  const ep = owned(file);

  test("is kept exactly as recorded", () => {
    expect(ep.process).toEqual(hostile);
  });

  test("is escaped in every table cell", () => {
    const table = renderEndpointTable([ep], { extended: true, names: numericNames() });
    const row = table.split("\n")[1]!;
    expect(table.trimEnd().split("\n")).toHaveLength(2);
    expect(row).not.toMatch(RAW_CONTROL);
    expect(row).toContain(`${PROCESS.pid}/n${SHOWN}`);
    expect(row).toContain(`u${SHOWN}`);
    expect(row).toContain(`x${SHOWN}.service`);
    expect(row).toContain(`/p${SHOWN}`);
  });

  test("is escaped in CSV", () => {
    const [, row] = renderCsv([ep]).trimEnd().split("\n");
    expect(row).not.toMatch(RAW_CONTROL);
    expect(row).toContain(`c${SHOWN}`);
  });

  test("is JSON-escaped in JSON, as a live name is, and reads back exactly", () => {
    const text = endpointJsonText(ep);
    expect(text).not.toMatch(/[\x00-\x1f]/);
    expect(text).toContain("\\u001b[2J");
    expect(text).toContain("\\u0000");
    expect(text).toContain("\\ud800");
    expect(JSON.parse(text).process.cmdline).toBe(hostile.cmdline);
  });

  test("a container id with escapes is escaped in the table", () => {
    const container = { runtime: "docker", id: "\u001b[31mabc", pod: null } as const;
    const e = owned(withLines(ownedBy({ ...PROCESS, container })));
    const row = renderEndpointTable([e], { extended: true, names: numericNames() }).split("\n")[1]!;
    expect(row).not.toMatch(RAW_CONTROL);
    expect(row).toContain("docker:\\x1b[31mabc");
  });

  test("bytes that are not UTF-8 show as U+FFFD, as a live name read from /proc does", () => {
    const [before, after] = (DATAGRAMS + ownedBy({ ...PROCESS, name: "a@@" }).map((l) => JSON.stringify(l)).join("\n") + "\n").split("@@");
    const file = recording("");
    fs.writeFileSync(file, Buffer.concat([Buffer.from(before!), Buffer.from([0xff, 0xfe]), Buffer.from(after!)]));
    expect(owned(file).process!.name).toBe("a\ufffd\ufffd");
  });

  test("a raw NUL or newline byte inside a JSON string is refused with its line", () => {
    const file = withLines([{ owners: 1 }, `{"socket":${OWNED},"pids":[1]}`, `{"process":{"pid":1,"name":"a\u0000b"}}`]);
    expectRefused(file, lineOf(file, '"process"'), "not a JSON line");
  });
});

describe("numbers out of range", () => {
  test("a PID of 2^53-1 is listed exactly", () => {
    const pid = 2 ** 53 - 1;
    const ep = owned(withLines(ownedBy({ ...PROCESS, pid }, [pid])));
    expect(ep.pids).toEqual([pid]);
    expect(JSON.parse(endpointJsonText(ep)).process.pid).toBe(pid);
  });

  test.each([
    ["2^53", String(2 ** 53)],
    ["a negative PID", "-1"],
    ["PID 0", "0"],
    ["a fractional PID", "1.5"],
    ["a PID past every double", "1e400"],
    ["a PID in a string", '"7"'],
    ["a PID that is null", "null"],
    ["a PID that is an array", "[7]"],
  ])("%s in pids is refused", (_what, pid) => {
    const file = withLines([{ owners: 1 }, `{"socket":${OWNED},"pids":[${pid}]}`]);
    expectRefused(file, lineOf(file, '"socket"'), "expected {socket: inode, pids: [pid, …]}");
  });

  test.each([
    ["negative", "-5"],
    ["fractional", "5.5"],
    ["2^53", String(2 ** 53)],
    ["an object", "{}"],
  ])("a %s inode is refused", (_what, inode) => {
    const file = withLines([{ owners: 1 }, `{"socket":${inode},"pids":[7]}`]);
    expectRefused(file, lineOf(file, '"socket"'), "expected {socket: inode, pids: [pid, …]}");
  });

  test.each([
    ["a negative uid", { uid: -1 }, "uid"],
    ["a fractional ppid", { ppid: 0.5 }, "ppid"],
    ["a pid of 2^53", { pid: 2 ** 53 }, "pid"],
  ])("%s in a process is refused", (_what, change, field) => {
    const file = withLines(ownedBy({ ...PROCESS, ...change }));
    expectRefused(file, lineOf(file, '"process"'), `recorded process has a bad ${field}`);
  });

  test("a PID named twice for one socket is refused", () => {
    const file = withLines(ownedBy(PROCESS, [PROCESS.pid, PROCESS.pid]));
    expectRefused(file, lineOf(file, '"socket"'), "expected {socket: inode, pids: [pid, …]}");
  });

  test("an owners count past 2^53 is refused", () => {
    const file = withLines(['{"owners":1e300}']);
    expectRefused(file, lineOf(file, '"owners"'), "expected {owners: count}");
  });
});

describe("sockets named oddly", () => {
  test("an owner line for an inode no socket has changes nothing", () => {
    const eps = replay(withLines([{ owners: 1 }, { socket: 123_456_789, pids: [7] }, { process: { ...PROCESS, pid: 7 } }]));
    expect(eps.every((e) => e.process === null && e.pids.length === 0)).toBe(true);
  });

  test("a socket named twice keeps its last owners, as a repeated socket of an interrupted dump would", () => {
    const other = { ...PROCESS, pid: 8, name: "later" };
    const ep = owned(withLines([{ owners: 2 }, { socket: OWNED, pids: [PROCESS.pid] }, { socket: OWNED, pids: [8] }, { process: PROCESS }, { process: other }]));
    expect(ep.pids).toEqual([8]);
    expect(ep.process).toEqual(other);
  });

  test("a socket whose process line is missing shows its PIDs and no process", () => {
    const ep = owned(withLines([{ owners: 1 }, { socket: OWNED, pids: [7] }]));
    expect(ep.pids).toEqual([7]);
    expect(ep.process).toBeNull();
  });

  test("a recording of every socket of the fixture, each with its own process, reads back whole", () => {
    const eps = replay(FIXTURE).filter((e) => e.inode !== 0);
    const file = withLines(ownerLines(eps.map((e, i) => ({ ...e, pids: [100 + i], process: { ...PROCESS, pid: 100 + i, name: `p${i}` } }))));
    const back = replay(file).filter((e) => e.inode !== 0);
    expect(back.map((e) => e.process?.name)).toEqual(eps.map((_, i) => `p${i}`));
  });
});

describe("absurd sizes", () => {
  test("more owner lines than the recording has sockets are refused at the first one too many", () => {
    const lines: unknown[] = [{ owners: 100_000 }];
    for (let i = 1; i <= 100_000; i++) lines.push({ socket: i, pids: [i] });
    const [, line] = /:(\d+): more owner lines than the recording has sockets$/.exec(refusal(withLines(lines)).message) ?? [];
    // The fixture has 10 sockets in ~3.5 kB of datagrams: the refusal comes within a few hundred lines.
    expect(Number(line)).toBeGreaterThan(DATAGRAMS.split("\n").length);
    expect(Number(line)).toBeLessThan(1000);
  });

  test("owner lines in a recording without datagrams are refused", () => {
    const file = recording(`{"owners":1}\n{"socket":5,"pids":[7]}\n`);
    expectRefused(file, 2, "more owner lines than the recording has sockets");
  });

  test("a recording of only an owners marker lists nothing", () => {
    expect(replay(recording(`{"owners":0}\n`))).toEqual([]);
  });

  test("a line longer than any recording writes is refused before it is parsed", () => {
    const file = withLines(ownedBy({ ...PROCESS, cmdline: "x".repeat(17 * 1024 * 1024) }));
    expectRefused(file, lineOf(file, '"process"'), /^line longer than \d+ MiB$/);
  });

  test("more PIDs than any socket has are refused", () => {
    const pids = Array.from({ length: 4097 }, (_, i) => i + 1);
    const file = withLines(ownedBy(PROCESS, pids));
    expectRefused(file, lineOf(file, '"socket"'), "expected {socket: inode, pids: [pid, …]}");
  });

  test("a line nested a million deep is refused, not a stack overflow", () => {
    const file = withLines([{ owners: 1 }, `{"process":${"[".repeat(1_000_000)}${"]".repeat(1_000_000)}}`]);
    // JSON.parse takes this depth; were it to give up, the line would be "not a JSON line".
    expectRefused(file, lineOf(file, '"process"'), /^(recorded process has a bad record|not a JSON line)$/);
  });
});

describe("lines of the wrong shape", () => {
  test.each([
    ["an array", [1, 2], "expected {family, protocol, data}"],
    ["a number", 5, "expected {family, protocol, data}"],
    ["null", null, "expected {family, protocol, data}"],
    ["an owners count that is an object", { owners: { n: 1 } }, "expected {owners: count}"],
    ["pids that are an object", { socket: 5, pids: { length: 1, 0: 7 } }, "expected {socket: inode, pids: [pid, …]}"],
    ["pids nested in an array", { socket: 5, pids: [[7]] }, "expected {socket: inode, pids: [pid, …]}"],
    ["a process that is an array", { process: [PROCESS] }, "recorded process has a bad record"],
    ["a process that is null", { process: null }, "recorded process has a bad record"],
    ["a container that is an array", { process: { ...PROCESS, container: [] } }, "recorded process has a bad container"],
    ["a runtime named after a prototype key", { process: { ...PROCESS, container: { runtime: "toString", id: null, pod: null } } }, "recorded process has a bad container"],
    ["a name that is an object", { process: { ...PROCESS, name: { toString: "x" } } }, "recorded process has a bad name"],
    ["a line of two kinds", { owners: 1, socket: 5, pids: [7] }, "an owner line holds one of owners, socket or process"],
    ["a process line with a socket", { socket: 5, pids: [7], process: PROCESS }, "an owner line holds one of owners, socket or process"],
  ])("%s is refused with its line", (_what, line, message) => {
    const file = withLines([{ owners: 1 }, line]);
    expectRefused(file, DATAGRAMS.split("\n").length + 1, message);
  });

  test.each([
    ["__proto__ at the top", '{"__proto__":{"owners":1}}'],
    ["constructor at the top", '{"constructor":{"owners":1}}'],
    ["toString at the top", '{"toString":1}'],
  ])("%s is no owner line", (_what, line) => {
    const file = withLines([{ owners: 1 }, line]);
    expectRefused(file, lineOf(file, line), "expected {family, protocol, data}");
  });

  test("prototype keys in a process neither pollute nor become fields", () => {
    const body = JSON.stringify(PROCESS).slice(1);
    const file = withLines([
      { owners: 1 },
      { socket: OWNED, pids: [PROCESS.pid] },
      `{"process":{"__proto__":{"polluted":true,"unit":"evil"},"constructor":{"prototype":{"polluted":true}},${body}}`,
    ]);
    expect(owned(file).process).toEqual(PROCESS);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  test("a process whose pid hides in __proto__ is refused", () => {
    const file = withLines([{ owners: 1 }, `{"process":{"__proto__":{"pid":7,"name":"x"}}}`]);
    expectRefused(file, lineOf(file, '"process"'), "recorded process has a bad pid");
  });
});

describe("damaged files", () => {
  test("a truncated last line is refused with its line", () => {
    const file = recording(DATAGRAMS + `{"owners":1}\n{"socket":${OWNED},"pids":[7]}\n{"process":{"pid":7,"na`);
    expectRefused(file, lineOf(file, '"process"'), "not a JSON line");
  });

  test("a last line without its newline is read", () => {
    const file = recording(DATAGRAMS + `{"owners":1}\n{"socket":${OWNED},"pids":[${PROCESS.pid}]}\n{"process":${JSON.stringify(PROCESS)}}`);
    expect(owned(file).process).toEqual(PROCESS);
  });

  test("fine datagrams and garbage owner lines: the first garbage line is named", () => {
    const file = recording(DATAGRAMS + `{"owners":1}\n\u0000\u0001\u00ff garbage\n{"socket":1,"pids":[1]}\n`);
    expectRefused(file, lineOf(file, "garbage"), "not a JSON line");
  });

  test("CRLF line ends read as LF ones do", () => {
    const lines = ownedBy(PROCESS).map((l) => JSON.stringify(l));
    const lf = replay(recording(DATAGRAMS + lines.join("\n") + "\n"));
    const crlf = replay(recording((DATAGRAMS + lines.join("\n") + "\n").replaceAll("\n", "\r\n")));
    expect(crlf).toEqual(lf);
    expect(crlf.find((e) => e.inode === OWNED)!.process).toEqual(PROCESS);
  });

  test("blank and whitespace-only lines are skipped", () => {
    const ep = owned(withLines(["", "   ", "\t", ...ownedBy(PROCESS), ""]));
    expect(ep.process).toEqual(PROCESS);
  });

  test("datagram data that is not base64 is refused with its line", () => {
    const file = recording(`{"family":2,"protocol":6,"data":"!!not base64!!"}\n`);
    expectRefused(file, 1, "expected {family, protocol, data}");
  });

  test("a datagram that does not decode is refused with its line when it is read", () => {
    const file = recording(DATAGRAMS + `{"family":2,"protocol":6,"data":"${Buffer.alloc(20).toString("base64")}"}\n`);
    expectRefused(file, DATAGRAMS.split("\n").length, /netlink message/);
  });

  test("a datagram that does not decode among good ones is named by its own line", () => {
    const lines = DATAGRAMS.trimEnd().split("\n");
    const bad = `{"family":2,"protocol":6,"data":"${Buffer.alloc(20).toString("base64")}"}`;
    const file = recording([lines[0], bad, ...lines.slice(1)].join("\n") + "\n");
    expectRefused(file, 2, /netlink message/);
  });

  test("datagrams of a family no dump reads make no room for owner lines", () => {
    const unix = `{"family":1,"protocol":0,"data":"${Buffer.alloc(64 * 1024).toString("base64")}"}`;
    const file = recording(`${unix}\n{"owners":1}\n{"socket":5,"pids":[7]}\n`);
    expectRefused(file, 3, "more owner lines than the recording has sockets");
  });
});

describe("owner lines without their marker", () => {
  test("socket lines without {owners} still give the sockets their owners, and no note says none were kept", () => {
    const engine = new LinuxEngine({ source: "replay", replayFile: withLines([{ socket: OWNED, pids: [PROCESS.pid] }, { process: PROCESS }]) });
    try {
      const snap = engine.snapshot(REQUEST);
      expect(snap.notes).toEqual([]);
      expect(snap.endpoints.find((e) => e.inode === OWNED)!.process).toEqual(PROCESS);
    } finally {
      engine.close();
    }
  });
});
