/**
 * The binary payload the host writes for the rule sandbox (src/rules/guest-payload.ts), read by
 * the real QuickJS of the sandbox: every event and endpoint must arrive as the object the rule API
 * documents, with the same keys in the same order, strings of any width and length, and numbers
 * exactly (-0, NaN, the int32 edges, epoch milliseconds). Then through a RuleSet, what a rule
 * sees is compared field by field with the host's objects.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { newQuickJSWASMModuleFromVariant, type QuickJSContext, type QuickJSHandle } from "quickjs-emscripten-core";
import singlefileVariant from "@jitl/quickjs-singlefile-cjs-release-sync";
import { encodeEndpoints, encodeEvents, encodeProbe, PROBE_JSON } from "../../src/rules/guest-payload.ts";
import { RuleSet } from "../../src/rules/rule-set.ts";
import type { RuleAction } from "../../src/model/rule-action.ts";
import { endpointToJson } from "../../src/format/endpoint-json.ts";
import type { Endpoint, TcpState } from "../../src/model/endpoint.ts";
import type { ProcessInfo } from "../../src/model/process.ts";
import type { EndpointEvent } from "../../src/monitor/events.ts";
import { NO_COUNTERS, endpoint, processInfo } from "../support/endpoints.ts";

/**
 * A description of a value that JSON would blur: numbers keep -0, NaN and infinities, and
 * objects keep their key order. The same text runs in QuickJS and here.
 */
const DESCRIBE = String.raw`(function describe(x) {
  if (x === null) return "null";
  if (typeof x === "number") return Object.is(x, -0) ? "-0" : x !== x ? "NaN" : String(x);
  if (typeof x === "string") return JSON.stringify(x);
  if (typeof x === "boolean") return String(x);
  if (Array.isArray(x)) return "[" + x.map(describe).join(",") + "]";
  if (typeof x === "object") return "{" + Object.keys(x).map(function (k) { return k + ":" + describe(x[k]); }).join(",") + "}";
  return "?" + typeof x;
})`;
const describeHere = (0, eval)(DESCRIBE) as (x: unknown) => string;

let ctx: QuickJSContext;
let describeThere: QuickJSHandle;

beforeAll(async () => {
  const variant = (singlefileVariant as { default?: typeof singlefileVariant }).default ?? singlefileVariant;
  const module = await newQuickJSWASMModuleFromVariant(variant);
  ctx = module.newContext();
  describeThere = ctx.unwrapResult(ctx.evalCode(DESCRIBE));
});

afterAll(() => {
  describeThere.dispose();
  ctx.dispose();
});

/** Decodes bytes inside QuickJS and describes what it built. */
function decodeInGuest(bytes: Uint8Array): string {
  const buffer = ctx.newArrayBuffer(bytes.slice().buffer);
  const value = ctx.decodeBinaryJSON(buffer);
  buffer.dispose();
  expect(ctx.typeof(value)).toBe("object");
  const text = ctx.unwrapResult(ctx.callFunction(describeThere, ctx.undefined, value));
  value.dispose();
  const out = ctx.getString(text);
  text.dispose();
  return out;
}

/**
 * The payload as the rule API documents it: the fields and order of `list --json`
 * (endpointToJson), built here without the payload writer; an endpoint's process travels as an
 * index into the payload's process list.
 */
function expectedEndpoint(ep: Endpoint, procs: ProcessInfo[]): Record<string, unknown> {
  let p = -1;
  if (ep.process) {
    p = procs.indexOf(ep.process);
    if (p < 0) p = procs.push(ep.process) - 1;
  }
  const json = endpointToJson(ep) as unknown as Record<string, unknown>;
  return { ...json, process: p };
}

const expectedProcess = (p: ProcessInfo) => endpointToJson({ process: p } as Endpoint).process;

function expectedEvents(events: EndpointEvent[]): unknown {
  const procs: ProcessInfo[] = [];
  const e = events.map((ev) => {
    const o: Record<string, unknown> = { type: ev.type, seq: ev.seq, time: ev.time, endpoint: expectedEndpoint(ev.endpoint, procs) };
    if (ev.type === "state-changed") o.previousState = ev.previousState ?? null;
    else if (ev.type === "counters") o.counters = ev.counters ?? null;
    else if (ev.shortLived) o.shortLived = true;
    return o;
  });
  return { e, p: procs.map(expectedProcess) };
}

// Strings of UTF-16 code units, lone surrogates and NUL included, some long enough for
// multi-byte lengths.
const anyText = fc.oneof(
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 40 }),
  fc.string({ unit: fc.integer({ min: 0, max: 0xff }).map((c) => String.fromCharCode(c)), minLength: 60, maxLength: 300 }),
  fc.constantFrom("", "tcp", "127.0.0.1", "::ffff:10.0.0.1", "fe80::1%eth0", "\u00e9", "\u4e2d", "\u{1f600}"),
);
const anyNumber = fc.oneof(
  fc.integer(),
  fc.integer({ min: -(2 ** 31) - 2, max: -(2 ** 31) + 2 }),
  fc.integer({ min: 2 ** 31 - 2, max: 2 ** 31 + 2 }),
  fc.constantFrom(0, -0, NaN, Infinity, -Infinity, 1763769600123, 2 ** 53 - 1, -(2 ** 53) + 1, Number.MIN_VALUE),
  fc.double(),
);
const orNull = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: null });
const STATES: TcpState[] = ["ESTABLISHED", "SYN_SENT", "LISTEN", "TIME_WAIT", "CLOSE_WAIT"];

const anyProcess: fc.Arbitrary<ProcessInfo> = fc.record({
  pid: fc.nat(), name: anyText, path: orNull(anyText), cmdline: orNull(anyText), uid: orNull(fc.nat()),
  user: orNull(anyText), startTime: orNull(anyText), ppid: orNull(fc.nat()),
});

function anyEvents(): fc.Arbitrary<EndpointEvent[]> {
  return fc.array(anyProcess, { minLength: 1, maxLength: 4 }).chain((procs) => {
    const endpoint: fc.Arbitrary<Endpoint> = fc.record({
      protocol: fc.constantFrom("tcp", "udp"), family: fc.constantFrom(4, 6), localAddress: anyText, localPort: anyNumber,
      remoteAddress: anyText, remotePort: anyNumber, state: orNull(fc.constantFrom(...STATES)), inode: anyNumber, uid: orNull(anyNumber),
      user: orNull(anyText), interfaceIndex: fc.nat(), receiveQueue: fc.constant(null), sendQueue: fc.constant(null),
      bytesSent: orNull(anyNumber), bytesReceived: orNull(anyNumber), packetsSent: orNull(anyNumber), packetsReceived: orNull(anyNumber),
      rttMs: fc.constant(null), cookie: orNull(anyText), process: orNull(fc.constantFrom(...procs)),
      pids: fc.array(anyNumber, { maxLength: 3 }),
    }) as fc.Arbitrary<Endpoint>;
    const counters = fc.record({
      bytesSent: anyNumber, bytesReceived: anyNumber, packetsSent: anyNumber, packetsReceived: anyNumber,
      intervalMs: anyNumber, bytesSentPerSecond: anyNumber, bytesReceivedPerSecond: anyNumber,
    });
    const event: fc.Arbitrary<EndpointEvent> = fc.record({
      type: fc.constantFrom("opened", "closed", "state-changed", "counters"), seq: anyNumber, time: anyNumber, endpoint,
      previousState: orNull(fc.constantFrom(...STATES)), counters: fc.option(counters, { nil: undefined }), shortLived: fc.boolean(),
    }) as fc.Arbitrary<EndpointEvent>;
    return fc.array(event, { maxLength: 12 });
  });
}

describe("payloads decoded by the sandbox's QuickJS", () => {
  it("the format probe reads back exactly", () => {
    expect(decodeInGuest(encodeProbe())).toBe(describeHere(JSON.parse(PROBE_JSON)));
  });

  it("events arrive as the documented objects, for any strings and numbers", () => {
    fc.assert(
      fc.property(anyEvents(), (events) => {
        expect(decodeInGuest(encodeEvents(events))).toBe(describeHere(expectedEvents(events)));
      }),
      { numRuns: 300 },
    );
  });

  it("endpoint lists arrive with their processes once", () => {
    fc.assert(
      fc.property(anyEvents(), (events) => {
        const endpoints = events.map((e) => e.endpoint);
        const procs: ProcessInfo[] = [];
        const e = endpoints.map((ep) => expectedEndpoint(ep, procs));
        expect(decodeInGuest(encodeEndpoints(endpoints))).toBe(describeHere({ e, p: procs.map(expectedProcess) }));
      }),
      { numRuns: 200 },
    );
  });

  it("numbers keep their exact value at the edges of the short forms", () => {
    const edges = [0, -0, 1, -1, 63, 64, -64, -65, 8191, 8192, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, -(2 ** 31) - 1, 2 ** 32, 0.1, NaN, -Infinity];
    const ep = endpoint({ localAddress: "a", localPort: 1, remoteAddress: "b", remotePort: 2, state: null, inode: 0, uid: null, user: null,
      receiveQueue: null, sendQueue: null, ...NO_COUNTERS, cookie: null, process: null, pids: edges });
    expect(decodeInGuest(encodeEndpoints([ep]))).toBe(describeHere({ e: [expectedEndpoint(ep, [])], p: [] }));
  });

  it("a payload larger than the writer's first buffer is whole", () => {
    const long = "x".repeat(70_000);
    const ep = { protocol: "udp", family: 6, localAddress: long, localPort: 53, remoteAddress: "\u4e2d".repeat(40_000), remotePort: 0, state: null,
      inode: 7, uid: 0, user: "root", interfaceIndex: 0, receiveQueue: null, sendQueue: null, bytesSent: 1, bytesReceived: 2, packetsSent: 3,
      packetsReceived: 4, rttMs: null, cookie: "1", process: null, pids: [] } satisfies Endpoint;
    const bytes = encodeEndpoints([ep, ep]);
    expect(bytes.length).toBeGreaterThan(2 * (70_000 + 80_000));
    expect(decodeInGuest(bytes)).toBe(describeHere({ e: [expectedEndpoint(ep, []), expectedEndpoint(ep, [])], p: [] }));
  });
});

describe("what a rule sees", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "sockwarden-payload-"));
    // The rule writes back what it got; the host compares it with the objects it sent.
    writeFileSync(
      path.join(dir, "echo.ts"),
      `import { defineRule } from "sockwarden";
export default defineRule({
  name: "echo",
  on: ["opened", "closed", "state-changed", "counters"],
  start(list, act) { act.log("start " + JSON.stringify(list) + " " + String(list.length > 1 && list[0].process === list[1].process)); },
  handle(event, act) { act.log(JSON.stringify(event)); },
});
`,
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const proc = processInfo({ pid: 42, name: "caf\u00e9 \u4e2d", path: "/opt/\u{1f600}", uid: 1000, user: "\u00fcser", startTime: "2026-11-22T00:00:00.000Z" });
  const ep = (port: number, over: Partial<Endpoint> = {}): Endpoint =>
    endpoint({
      family: 6, localAddress: "fe80::1", localPort: port, remoteAddress: "2001:db8::\u00e9", remotePort: 25, inode: 99, uid: 1000, user: null,
      interfaceIndex: 2, bytesSent: 2 ** 40, bytesReceived: null, packetsSent: 3, packetsReceived: 4, rttMs: 1.5,
      cookie: String(9_000_000_000 + port), process: proc, pids: [42, 43], ...over,
    });
  // What the API documents, in its order: the endpoint without host-only fields, the process
  // without unit and container.
  const apiEndpoint = (e: Endpoint) => {
    const shape = expectedEndpoint(e, []);
    return { ...shape, process: e.process ? expectedProcess(e.process) : null };
  };

  it("events and start lists match the host's objects field for field", async () => {
    const set = new RuleSet({ clock: () => 1_763_769_600_000 });
    try {
      await set.add({ kind: "file", path: path.join(dir, "echo.ts"), label: "echo.ts" });
      const a = ep(1000), b = ep(1001, { process: null, pids: [], state: "SYN_SENT", cookie: null });
      const start = (await set.start([a, ep(1002)]));
      expect(start.map((x) => x.reason)).toEqual([`start ${JSON.stringify([apiEndpoint(a), apiEndpoint(ep(1002))])} true`]);
      const counters = { bytesSent: 10, bytesReceived: 20, packetsSent: 1, packetsReceived: 2, intervalMs: 1000, bytesSentPerSecond: 10, bytesReceivedPerSecond: 20 };
      const events: EndpointEvent[] = [
        { type: "opened", seq: 1, time: 1_763_769_600_001, endpoint: a },
        { type: "opened", seq: 2, time: 1_763_769_600_002, endpoint: b, shortLived: true },
        { type: "state-changed", seq: 3, time: 1_763_769_600_003, endpoint: a, previousState: "SYN_SENT" },
        { type: "counters", seq: 4, time: 1_763_769_600_004, endpoint: a, counters },
        { type: "closed", seq: 5, time: 1_763_769_600_005, endpoint: b },
      ];
      const seen = (await set.dispatch(events)).map((x: RuleAction) => x.reason);
      expect(seen).toEqual(events.map((e) => JSON.stringify({ ...e, endpoint: apiEndpoint(e.endpoint) })));
    } finally {
      set.dispose();
    }
  });

  it("a list too big for the rule's memory is a memory failure of that call, and the rule goes on", async () => {
    const reports: string[] = [];
    // A time budget that cannot run out first: building 40,000 objects until memory runs out took
    // longer than the default's 500 ms of a start call on a loaded machine.
    const set = new RuleSet({ limits: { wasmMemoryBytes: 20 << 20, callBudgetMs: 1000 }, onReport: (r) => reports.push(`${r.kind}: ${r.message}`) });
    try {
      await set.add({ kind: "file", path: path.join(dir, "echo.ts"), label: "echo.ts" });
      // 40,000 endpoints are ~7 MiB of payload: it can be copied in, its objects cannot be built.
      // 150,000 are ~26 MiB, more than the whole memory: the copy is not even tried.
      expect((await set.start(Array.from({ length: 40_000 }, (_, i) => ep(i))))).toEqual([]);
      expect((await set.start(Array.from({ length: 150_000 }, (_, i) => ep(i))))).toEqual([]);
      expect(reports).toEqual([
        "memory: ran out of memory: the decoded objects did not fit into what is left of its memory",
        expect.stringMatching(/^memory: ran out of memory: the payload \(\d+ KiB\) did not fit into what is left of its memory$/),
      ]);
      expect(set.loaded[0]!.quarantined).toBe(false);
      // Nothing was written where it should not be: the rule still sees what it is sent.
      const e: EndpointEvent = { type: "opened", seq: 1, time: 1, endpoint: ep(7) };
      expect((await set.dispatch([e])).map((x) => x.reason)).toEqual([JSON.stringify({ ...e, endpoint: apiEndpoint(e.endpoint) })]);
    } finally {
      set.dispose();
    }
  });
});
