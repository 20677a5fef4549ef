/**
 * The rule API end to end, in process: rules from test/fixtures/rules/runtime compiled and run
 * in their sandboxes through RuleSet, fed synthetic events, with the clock injected. Errors name
 * the .ts line; options merge; module state lasts; `on` filters; start and periodic hooks run
 * when due; the helpers answer as documented; close and kill resolve only to what sockwarden saw.
 */
import { afterEach, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import path from "node:path";
import { RuleSet, formatReport, type RuleSetOptions } from "../../src/rules/rule-set.ts";
import type { RuleAction, RuleReport } from "../../src/model/rule-action.ts";
import type { Endpoint } from "../../src/model/endpoint.ts";
import type { ProcessInfo } from "../../src/model/process.ts";
import type { EndpointEvent } from "../../src/monitor/events.ts";
import { endpoint as anEndpoint, namedProcess } from "../support/endpoints.ts";

const DIR = path.resolve(import.meta.dirname, "../fixtures/rules/runtime");
const T0 = Date.parse("2026-03-01T12:00:00.000Z");

const proc = (pid: number, name: string): ProcessInfo => namedProcess(pid, name, { startTime: "2026-03-01T11:00:00.000Z" });

let cookies = 5000;
function endpoint(local: string, remote = "0.0.0.0:0", over: Partial<Endpoint> = {}): Endpoint {
  const [la, lp] = local.split(/:(?=\d+$)/);
  const [ra, rp] = remote.split(/:(?=\d+$)/);
  return anEndpoint({
    family: la!.includes(":") ? 6 : 4, localAddress: la!, localPort: Number(lp), remoteAddress: ra!, remotePort: Number(rp),
    state: Number(rp) === 0 ? "LISTEN" : "ESTABLISHED", inode: cookies, packetsSent: 0, packetsReceived: 0, rttMs: null,
    cookie: String(cookies++), process: proc(100, "app"), pids: [100], ...over,
  });
}

let seq = 0;
function event(type: EndpointEvent["type"], ep: Endpoint, at: number, extra: Partial<EndpointEvent> = {}): EndpointEvent {
  return { type, seq: ++seq, time: T0 + at, endpoint: ep, ...extra };
}

const sets: RuleSet[] = [];
afterEach(() => {
  for (const s of sets.splice(0)) s.dispose();
});

async function load(files: string[], options: Record<string, unknown> = {}, setOptions: RuleSetOptions = {}) {
  const reports: RuleReport[] = [];
  let now = T0;
  const set = new RuleSet({ onReport: (r) => reports.push(r), clock: () => now, ...setOptions });
  sets.push(set);
  for (const f of files) await set.add({ kind: "file", path: path.join(DIR, f), label: f }, options[f] ?? {});
  return { set, reports, setNow: (ms: number) => (now = T0 + ms) };
}

const reasons = (actions: RuleAction[]) => actions.map((a) => a.reason);
/** A close's endpoint and event; nothing for the other actions. */
const endpointOf = (a: RuleAction) => (a.action === "close" ? a.endpoint : undefined);
const seqOf = (a: RuleAction) => (a.action === "close" ? a.seq : undefined);

/** 1-based line and column of `code` on the line carrying `marker` in a fixture. */
function position(file: string, marker: string, code: string): { line: number; column: number } {
  const lines = readFileSync(path.join(DIR, file), "utf8").split("\n");
  const i = lines.findIndex((l) => l.includes(marker));
  if (i < 0) throw new Error(`no ${marker} in ${file}`);
  return { line: i + 1, column: lines[i]!.indexOf(code) + 1 };
}

describe("errors name the line in the rule's .ts file", () => {
  it("in handle, in a helper it calls, and in start", async () => {
    const { set, reports } = await load(["throws.ts"]);
    (await set.start([]));
    const a = endpoint("10.0.0.1:1000", "10.0.0.2:80");
    const b = endpoint("10.0.0.1:1001", "10.0.0.2:80");
    const actions = (await set.dispatch([event("opened", a, 0), event("opened", b, 1), event("closed", a, 2)]));
    expect(reasons(actions)).toEqual(["opened 1", "opened 2", "closed 1"]);
    const start = position("throws.ts", "throws here (start)", "Error(");
    const handle = position("throws.ts", "throws here (handle)", "TypeError(");
    const helper = position("throws.ts", "throws here (helper)", "RangeError(");
    expect(reports.map((r) => ({ kind: r.kind, line: r.line, column: r.column, message: r.message, seq: r.seq }))).toEqual([
      { kind: "error", ...start, message: "Error: start throws", seq: undefined },
      { kind: "error", ...handle, message: "TypeError: even événement", seq: seq - 1 },
      { kind: "error", ...helper, message: `RangeError: deep in a helper at closed ${seq}`, seq },
    ]);
    expect(formatReport(reports[1]!)).toBe(`rule throws (throws.ts:${handle.line}:${handle.column}): TypeError: even événement [event ${seq - 1}]`);
  });
});

describe("options", () => {
  it("are the defaults with the configured values laid over them, key by key", async () => {
    const { set } = await load(["options.ts"], { "options.ts": { ports: [2525], extra: true, nested: { a: 9 } } });
    expect(reasons((await set.start([])))).toEqual([JSON.stringify({ threshold: 5, ports: [2525], label: "mail", nested: { a: 9 }, extra: true })]);
  });

  it("without configuration are the defaults, one object for the rule's life", async () => {
    const { set } = await load(["options.ts"]);
    expect(JSON.parse((await set.start([]))[0]!.reason)).toEqual({ threshold: 5, ports: [25, 587], label: "mail", nested: { a: 1, b: 2 } });
    const ep = endpoint("10.0.0.1:1", "10.0.0.2:2");
    expect(reasons((await set.dispatch([event("opened", ep, 0)])))).toEqual(["6"]);
    expect(reasons((await set.dispatch([event("closed", ep, 1)])))).toEqual(["7"]);
  });
});

describe("module state and event types", () => {
  const a = endpoint("10.0.0.1:2000", "10.0.0.2:443");
  const events = () => [
    event("opened", a, 0),
    event("state-changed", { ...a, state: "CLOSE_WAIT" }, 10, { previousState: "ESTABLISHED" }),
    event("counters", a, 10, {
      counters: { bytesSent: 10, bytesReceived: 20, packetsSent: 1, packetsReceived: 2, intervalMs: 1000, bytesSentPerSecond: 10, bytesReceivedPerSecond: 20 },
    }),
    event("closed", a, 20),
    event("opened", endpoint("10.0.0.1:2001", "10.0.0.2:443"), 30, { shortLived: true }),
  ];

  it("module variables last between events and between batches", async () => {
    const { set } = await load(["stateful.ts"]);
    const [e1, e2, e3, e4, e5] = events();
    expect(reasons((await set.dispatch([e1!, e2!])))).toEqual(["opened 1 of 1", "state-changed 1 of 2"]);
    expect(reasons((await set.dispatch([e3!, e4!, e5!])))).toEqual(["counters 1 of 3", "closed 1 of 4", "opened 2 of 5"]);
  });

  it("`on` as one type; without `on`, everything but counters, with the extra fields", async () => {
    const { set } = await load(["only-closed.ts", "default-on.ts"]);
    const list = events();
    const out = (await set.dispatch(list));
    expect(reasons(out.filter((x) => x.rule === "only-closed"))).toEqual([`closed ${list[3]!.seq}`]);
    expect(reasons(out.filter((x) => x.rule === "default-on"))).toEqual([
      `opened ${list[0]!.seq}`,
      `state-changed ${list[1]!.seq} from ESTABLISHED`,
      `closed ${list[3]!.seq}`,
      `opened ${list[4]!.seq} short-lived`,
    ]);
    expect(set.loaded.map((l) => [l.name, l.info.on])).toEqual([
      ["only-closed", ["closed"]],
      ["default-on", ["opened", "closed", "state-changed"]],
    ]);
  });
});

describe("start and periodic hooks", () => {
  it("start once with the endpoints at start; periodic every `every` seconds of the injected clock", async () => {
    const { set } = await load(["hooks.ts"]);
    const eps = [endpoint("0.0.0.0:22"), endpoint("0.0.0.0:80")];
    expect(reasons((await set.start(eps)))).toEqual([`start 2 at ${T0}`]);
    expect((await set.tick(eps, T0 + 4_999))).toEqual([]);
    expect(reasons((await set.tick(eps, T0 + 5_000)))).toEqual([`periodic 22,80 at ${T0 + 5_000}`]);
    expect((await set.tick(eps, T0 + 9_000))).toEqual([]);
    // Due again 5 s after the last run, whenever that was.
    expect(reasons((await set.tick([eps[0]!], T0 + 12_000)))).toEqual([`periodic 22 at ${T0 + 12_000}`]);
    expect((await set.tick([], T0 + 16_999))).toEqual([]);
    expect(reasons((await set.tick([], T0 + 17_000)))).toEqual([`periodic  at ${T0 + 17_000}`]);
    expect(set.loaded[0]!.info).toMatchObject({ every: 5, start: true, periodic: true, handle: false });
  });

  it("the default period is 10 s, counted from when the rule was added", async () => {
    const { set, setNow } = await load([]);
    setNow(3_000);
    await set.add({ kind: "file", path: path.join(DIR, "default-on.ts"), label: "default-on.ts" });
    expect(set.loaded[0]!.info.every).toBe(10);
    await set.add({ kind: "file", path: path.join(DIR, "hooks.ts"), label: "hooks.ts" });
    expect((await set.tick([], T0 + 7_999))).toEqual([]);
    expect(reasons((await set.tick([], T0 + 8_000)))).toEqual([`periodic  at ${T0 + 8_000}`]);
  });
});

describe("helpers", () => {
  it("inCidr, isPrivate, isLoopback, portName and glob answer as documented", async () => {
    const { set } = await load(["helpers.ts"]);
    expect(JSON.parse((await set.start([]))[0]!.reason)).toEqual({
      inCidr: [true, false, true, true, false, true],
      isPrivate: [true, true, false, true, true, true, true, false, true, true, true, false, true],
      isLoopback: [true, true, true, true, false],
      portName: ["smtp", "domain", "https", "ssh", null, null, null],
      glob: [true, true, true, true, false, true, true],
    });
  });

  it("a helper given something it cannot read throws in the rule, which is reported", async () => {
    const { set, reports } = await load(["helpers.ts"]);
    const out = (await set.dispatch([event("opened", endpoint("10.0.0.1:9", "10.0.0.2:80"), 0)]));
    expect(out).toEqual([]);
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ kind: "error", line: position("helpers.ts", "10.0.0.0/33", "inCidr(event").line });
    expect(reports[0]!.message).toMatch(/10\.0\.0\.0\/33/);
  });
});

describe("close and kill resolve only to what sockwarden reported", () => {
  it("the event's endpoint, a copy of it, one still open from earlier; not one that closed", async () => {
    const { set, reports } = await load(["closer.ts"]);
    const first = endpoint("10.0.0.1:3000", "10.0.0.2:443");
    const second = endpoint("10.0.0.1:3001", "10.0.0.2:443");
    const e1 = event("opened", first, 0);
    const out1 = (await set.dispatch([e1]));
    expect(out1.map((a) => [a.action, a.reason, seqOf(a)])).toEqual([
      ["close", "given 3000", e1.seq],
      ["close", "copy 3000", undefined],
    ]);
    // Both resolve to sockwarden's own record of the socket, not the guest's copy.
    expect(endpointOf(out1[0]!)).toBe(first);
    expect(endpointOf(out1[1]!)).toBe(first);

    const e2 = event("opened", second, 1);
    const out2 = (await set.dispatch([e2]));
    expect(out2.map((a) => [a.reason, endpointOf(a)])).toEqual([
      ["remembered 3000", first],
      ["given 3001", second],
      ["copy 3001", second],
    ]);

    // Once closed, neither the closed event's endpoint nor the remembered copy can be closed.
    const e3 = event("closed", first, 2);
    const e4 = event("opened", endpoint("10.0.0.1:3002", "10.0.0.2:443"), 3);
    const out3 = (await set.dispatch([e3, e4]));
    expect(reasons(out3)).toEqual(["given 3002", "copy 3002"]);
    expect(reports.map((r) => [r.kind, r.message])).toEqual([
      ["rejected-action", "close refused: not an endpoint sockwarden reported (closed 3000)"],
      ["rejected-action", "close refused: not an endpoint sockwarden reported (remembered 3000)"],
    ]);
  });

  it("an object kept from an earlier batch closes its own socket, not the one now at its old place", async () => {
    const { set } = await load(["closer.ts"]);
    const listener = endpoint("10.0.0.1:8080");
    (await set.dispatch([event("opened", listener, 0)]));
    // The accepted connection shares the listener's local address and port, and is first in
    // this batch, where the listener was first in the last one.
    const accepted = endpoint("10.0.0.1:8080", "10.0.0.2:5555");
    const out = (await set.dispatch([event("opened", accepted, 1)]));
    expect(out.map((a) => [a.reason, endpointOf(a)])).toEqual([
      ["remembered 8080", listener],
      ["given 8080", accepted],
      ["copy 8080", accepted],
    ]);
  });

  it("start's endpoints can be closed; kill reaches the process holding a known endpoint", async () => {
    const { set, reports } = await load(["closer.ts"]);
    const listener = endpoint("0.0.0.0:22", "0.0.0.0:0", { process: proc(1, "sshd"), pids: [1] });
    const started = (await set.start([listener]));
    expect(started.map((a) => [a.action, a.reason, endpointOf(a)])).toEqual([["close", "start 22", listener]]);
    const owner = proc(4321, "backdoor");
    const ep = endpoint("0.0.0.0:7777", "0.0.0.0:0", { process: owner, pids: [4321] });
    const out = (await set.dispatch([event("opened", ep, 0)]));
    expect(out.filter((a) => a.action === "kill").map((a) => [a.reason, a.pid, a.process])).toEqual([
      ["owner of 7777", 4321, owner],
      ["pid of 7777", 4321, owner],
    ]);
    expect(reports).toEqual([]);
  });

  it("an endpoint that sockwarden no longer knows (setKnownEndpoints) is refused", async () => {
    const { set, reports } = await load(["closer.ts"]);
    const a = endpoint("10.0.0.1:4000", "10.0.0.2:443");
    (await set.dispatch([event("opened", a, 0)]));
    set.setKnownEndpoints([]);
    const b = endpoint("10.0.0.1:4001", "10.0.0.2:443");
    expect(reasons((await set.dispatch([event("opened", b, 1)])))).toEqual(["given 4001", "copy 4001"]);
    expect(reports.map((r) => r.message)).toEqual(["close refused: not an endpoint sockwarden reported (remembered 4000)"]);
  });
});

describe("failures over time", () => {
  it("quarantine needs maxFailures within the window; spread-out failures do not add up", async () => {
    const { set, reports, setNow } = await load(["throws.ts"], {}, { maxFailures: 3, failureWindowMs: 10_000 });
    const fail = async (at: number) => {
      setNow(at);
      const ep = endpoint("10.0.0.1:5000", "10.0.0.2:80");
      // The second of two opened events has an even seq or the first has: one throws either way.
      (await set.dispatch([event("opened", ep, at), event("opened", ep, at)]));
    };
    await fail(0);
    await fail(11_000);
    await fail(22_000);
    expect(reports.filter((r) => r.kind === "quarantined")).toEqual([]);
    await fail(25_000);
    await fail(28_000);
    expect(reports.filter((r) => r.kind === "quarantined").map((r) => r.message)).toEqual([
      "failed 3 times within 10 s; it gets no more events until it is reloaded",
    ]);
    expect(set.loaded[0]!.quarantined).toBe(true);
    expect((await set.dispatch([event("opened", endpoint("10.0.0.1:5001", "10.0.0.2:80"), 30_000)]))).toEqual([]);
  });
});
