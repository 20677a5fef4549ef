/**
 * The one rule for text that leaves for a person or a log line (src/text/escape-control.ts): each
 * class of character it escapes, that the escaped form reads back one way only, that nothing of
 * the escaped classes survives, and that every output for people goes through it: tables, CSV,
 * event lines, process properties, the live view, the sinks' lines and syslog's MSG and SD-PARAMs.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { escapeControl, hasControlCharacters } from "../../src/text/escape-control.ts";
import type { Endpoint } from "../../src/model/endpoint.ts";
import type { ProcessDetails } from "../../src/model/process.ts";
import { renderEndpointTable } from "../../src/view/endpoint-table.ts";
import { numericNames, friendlyNames } from "../../src/view/endpoint-names.ts";
import { renderCsv } from "../../src/view/endpoint-csv.ts";
import { eventLine } from "../../src/view/event-line.ts";
import { renderProcessProperties } from "../../src/view/process-properties.ts";
import { LiveModel } from "../../src/view/live/model.ts";
import { renderScreen } from "../../src/view/live/render.ts";
import { humanLine, recordSummary } from "../../src/outputs/record-text.ts";
import { rfc3164, rfc5424 } from "../../src/outputs/syslog-format.ts";
import type { SinkRecord } from "../../src/outputs/sink-record.ts";
import { endpointToJson } from "../../src/format/endpoint-json.ts";
import { listener, processInfo } from "../support/endpoints.ts";

/** Everything the rule escapes, written out here on its own rather than taken from the module. */
const FORBIDDEN = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff\ud800-\udfff]/u;

/** The inverse of escapeControl: only an unambiguous form can have one. */
function unescape(shown: string): string {
  return shown.replace(/\\(?:x([0-9a-f]{2})|u\{([0-9a-f]{4})\}|(\\))|\\/g, (all, x?: string, u?: string, bs?: string) => {
    if (x !== undefined) return String.fromCharCode(parseInt(x, 16));
    if (u !== undefined) return String.fromCharCode(parseInt(u, 16));
    if (bs !== undefined) return "\\";
    throw new Error(`a lone backslash in ${JSON.stringify(shown)} at "${all}"`);
  });
}

/** Any UTF-16 text, lone surrogates included, weighted towards the escaped classes. */
const anyText = fc.string({
  unit: fc.oneof(
    fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
    fc.constantFrom("\\", "x", "u", "{", "}", "1", "b", "\x1b", "\x07", "\n", "\x9b", "\u2028", "\u202e", "\u2066", "\ufeff", "\ud800", "\udc00", "\ud83d\ude00"),
  ),
  maxLength: 60,
});

const HOSTILE = '\x1b[2J\x1b]0;t\x07\n"x\x00\x9b31m\u2028\u202eevil';

describe("escapeControl", () => {
  it("shows C0, DEL and C1 as \\xNN", () => {
    for (let c = 0; c <= 0x1f; c++) expect(escapeControl(String.fromCharCode(c))).toBe(`\\x${c.toString(16).padStart(2, "0")}`);
    expect(escapeControl("\x7f")).toBe("\\x7f");
    for (let c = 0x80; c <= 0x9f; c++) expect(escapeControl(String.fromCharCode(c))).toBe(`\\x${c.toString(16)}`);
    expect(escapeControl("a\tb\nc\r")).toBe("a\\x09b\\x0ac\\x0d");
  });

  it("shows line separators, bidi controls, the BOM and lone surrogates as \\u{NNNN}", () => {
    const wide = [0x061c, 0x200e, 0x200f, 0x2028, 0x2029, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069, 0xfeff, 0xd800, 0xdbff, 0xdc00, 0xdfff];
    for (const c of wide) expect(escapeControl(String.fromCharCode(c))).toBe(`\\u{${c.toString(16).padStart(4, "0")}}`);
    expect(escapeControl("\udc00\ud800")).toBe("\\u{dc00}\\u{d800}");
  });

  it("doubles the backslash, so a name that reads \\x1b differs from one holding ESC", () => {
    expect(escapeControl("\\")).toBe("\\\\");
    expect(escapeControl("\\x1b")).toBe("\\\\x1b");
    expect(escapeControl("\x1b")).toBe("\\x1b");
    expect(escapeControl("C:\\Windows\\x.exe")).toBe("C:\\\\Windows\\\\x.exe");
  });

  it("leaves everything else as it is, the same string when nothing needs escaping", () => {
    for (const s of ["nginx: worker", "é ü ß", "漢字", "\ud83d\ude00", "👩\u200d💻", "a\u00a0b", "~!@#$%^&*()[]{}\"'"]) expect(escapeControl(s)).toBe(s);
    const s = "plain text";
    expect(escapeControl(s)).toBe(s);
  });

  it("escapes a hostile name completely", () => {
    expect(escapeControl(HOSTILE)).toBe('\\x1b[2J\\x1b]0;t\\x07\\x0a"x\\x00\\x9b31m\\u{2028}\\u{202e}evil');
  });

  it("output has nothing of the escaped classes, whatever the input", () => {
    fc.assert(fc.property(anyText, (s) => !FORBIDDEN.test(escapeControl(s))), { numRuns: 2000 });
  });

  it("reads back one way only: unescaping gives the input, so two texts never show alike", () => {
    fc.assert(fc.property(anyText, (s) => unescape(escapeControl(s)) === s), { numRuns: 2000 });
    fc.assert(fc.property(anyText, anyText, (a, b) => a === b || escapeControl(a) !== escapeControl(b)), { numRuns: 2000 });
  });

  it("hasControlCharacters sees the escaped classes but not the backslash", () => {
    expect(hasControlCharacters("a\\b")).toBe(false);
    expect(hasControlCharacters("fine")).toBe(false);
    for (const c of ["\x00", "\x1b", "\x7f", "\x9b", "\u2028", "\u202e", "\ufeff", "\ud800"]) expect(hasControlCharacters(`a${c}b`)).toBe(true);
  });
});

const proc = processInfo({ pid: 4242, name: HOSTILE, path: `/tmp/${HOSTILE}`, cmdline: `python3 -c ${HOSTILE}`, uid: 1000, user: `u${HOSTILE}` });
const ep = listener({ localPort: 7070, inode: 9, uid: 1000, user: `u${HOSTILE}`, process: proc, pids: [4242] });
const other: Endpoint = { ...ep, localPort: 7071, process: { ...proc, pid: 7, name: "sshd" }, pids: [7] };

/** No raw character of the escaped classes in any line, and as many lines as the layout says. */
function expectContained(text: string, lines?: number): void {
  const split = text.replace(/\n$/, "").split("\n");
  for (const line of split) expect(line).not.toMatch(FORBIDDEN);
  if (lines !== undefined) expect(split).toHaveLength(lines);
}

describe("every output for people goes through it", () => {
  it("tables: one line per endpoint, names, paths and users escaped", () => {
    const out = renderEndpointTable([ep, other], { extended: true, names: numericNames() });
    expectContained(out, 3);
    expect(out).toContain(`4242/${escapeControl(HOSTILE)}`);
    expect(out).toContain(`/tmp/${escapeControl(HOSTILE)}`);
    expect(out).toContain(`u${escapeControl(HOSTILE)}`);
  });

  it("tables: host names from reverse DNS are escaped too", () => {
    const out = renderEndpointTable([ep], { extended: false, names: friendlyNames(new Map([["127.0.0.1", `h${HOSTILE}`]])) });
    expectContained(out, 2);
    expect(out).toContain(`h${escapeControl(HOSTILE)}:7070`);
  });

  it("CSV: escaped, then quoted; one line per endpoint", () => {
    const out = renderCsv([ep, other]);
    expectContained(out, 3);
    expect(out).toContain(`,"${escapeControl(HOSTILE).replaceAll('"', '""')}",`);
  });

  it("event lines, with and without colour", () => {
    for (const colour of [false, true]) {
      const line = eventLine({ type: "opened", seq: 1, time: 0, endpoint: ep }, numericNames(), colour);
      const text = colour ? line.replace(/^\x1b\[32m|\x1b\[0m(?=\n$)/g, "") : line;
      expectContained(text, 1);
      expect(text).toContain(`4242/${escapeControl(HOSTILE)}`);
    }
  });

  it("process properties (proc, the live view's panel)", () => {
    const details: ProcessDetails = {
      pid: 4242, name: HOSTILE, path: proc.path, cmdline: proc.cmdline, uid: 1000, user: proc.user, startTime: null,
      ppid: 1, ppidName: HOSTILE, state: "S", threads: 1, rssKiB: 1, fdCount: 3, cgroup: `/x${HOSTILE}`, unit: `u${HOSTILE}`, unitUid: null, netns: null,
    };
    for (const width of [undefined, 60]) {
      const lines = renderProcessProperties(details, { width });
      expectContained(lines.join("\n"));
      if (width === undefined) expect(lines).toContain(`Name:         ${escapeControl(HOSTILE)}`);
    }
  });

  it("the live view: rows, the properties heading, prompts, messages and the filter", () => {
    const m = new LiveModel();
    m.load([ep, other]);
    const opts = { width: 200, height: 10, colour: false, now: 0, hostName: `box${HOSTILE}` };
    const sgr = (l: string) => l.replace(/\x1b\[[0-9;?]*m/g, "");
    const screen = () => renderScreen(m, opts).map(sgr).join("\n");
    expectContained(screen());
    expect(screen()).toContain(escapeControl(HOSTILE).slice(0, 10));
    m.message = { text: `ending ${HOSTILE}…`, error: true };
    expectContained(screen());
    expect(screen()).toContain(`ending ${escapeControl(HOSTILE)}`);
    m.message = null;
    m.setFilter(`zz${HOSTILE}`);
    expectContained(screen());
    expect(screen()).toContain(escapeControl(`zz${HOSTILE}`));
  });

  const alert: SinkRecord = {
    time: "2026-11-21T10:00:00.000Z", kind: "alert", rule: "control-text", severity: "warning",
    message: `reason ${HOSTILE}`, endpoint: endpointToJson(ep), process: proc,
  };

  it("the sinks' lines: one line, the rule's text and the process name escaped", () => {
    expect(recordSummary(alert)).toBe(`alert warning control-text: reason ${escapeControl(HOSTILE)} (pid 4242 ${escapeControl(HOSTILE)}; tcp 127.0.0.1:7070 -> 0.0.0.0:0)`);
    expectContained(humanLine(alert, false), 1);
    const coloured = humanLine(alert, true).replace(/^\x1b\[33m|\x1b\[0m(?=\n$)/g, "");
    expectContained(coloured, 1);
  });

  it("syslog: MSG and SD-PARAM values escaped, then PARAM-VALUE escaped", () => {
    const header = { facility: "local0" as const, hostname: "box", appName: "sockwarden", procId: 1 };
    const line = rfc5424(alert, header);
    expectContained(line, 1);
    const value = /process="((?:[^"\\\]]|\\["\\\]])*)"/.exec(line)?.[1];
    expect(value?.replace(/\\(["\\\]])/g, "$1")).toBe(escapeControl(HOSTILE));
    expect(line.endsWith(recordSummary(alert))).toBe(true);
    expectContained(rfc3164(alert, header), 1);
  });
});
