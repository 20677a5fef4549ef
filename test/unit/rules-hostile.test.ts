/**
 * The adversarial catalogue: every rule in test/fixtures/rules/hostile is loaded beside a
 * well-behaved counting rule (test/fixtures/rules/good-counter.ts), and a recorded event file
 * (flood.ndjson, 247 events) is replayed through all of them as the daemon would: the endpoints
 * announced at start to start hooks, then each refresh's events as one batch, with periodic hooks
 * ticking on an injected clock.
 *
 * Each hostile file says in its header what it tries and, on its `// Expect:` line, how it must
 * be contained:
 *   refused [at LINE] ["text"]   not loaded; the error is `file:line:col: message`
 *   none                         loads, runs, and nothing is reported (checked further below)
 *   kind ["text"], kind?, ...    the report kinds it must cause (`?`: may cause), no others
 * Like OpenSnitch's loader test, the counts of refused and loaded rules are checked too.
 *
 * Host memory: each sandbox's WebAssembly memory stays at or under its ceiling, and the process's
 * RSS grows by no more than those memories plus a fixed allowance. A separate check loads and
 * disposes rules many times and expects RSS to level off.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { RuleSet, formatReport } from "../../src/rules/rule-set.ts";
import type { RuleAction, RuleReport } from "../../src/model/rule-action.ts";
import { escapeControl } from "../../src/text/escape-control.ts";
import { DEFAULT_LIMITS } from "../../src/rules/sandbox.ts";
import { parseEventLines } from "../../src/rules/event-json-input.ts";
import { endpointKey } from "../../src/monitor/endpoint-key.ts";
import { RuleError } from "../../src/errors.ts";
import type { Endpoint } from "../../src/model/endpoint.ts";
import type { EndpointEvent } from "../../src/monitor/events.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const HOSTILE = path.join(ROOT, "test/fixtures/rules/hostile");
const GOOD = path.join(ROOT, "test/fixtures/rules/good-counter.ts");
const EVENTS = path.join(ROOT, "test/fixtures/events/flood.ndjson");
const MiB = 1 << 20;
/** What the process may grow by beyond its sandboxes' memories: compiler, JIT, test harness. */
const FIXED_ALLOWANCE = 192 * MiB;

interface Expectation {
  refused: { line: number | null; text: string | null } | null;
  required: Map<string, string | null>;
  optional: Set<string>;
}

function parseExpectation(file: string, source: string): Expectation {
  const line = /^\/\/ Expect: (.+)$/m.exec(source)?.[1];
  if (!line) throw new Error(`${file} has no "// Expect:" line`);
  const refused = /^refused(?: at (\d+))?(?: "((?:[^"\\]|\\.)*)")?$/.exec(line);
  if (refused) {
    const text = refused[2] === undefined ? null : (JSON.parse(`"${refused[2]}"`) as string);
    return { refused: { line: refused[1] ? Number(refused[1]) : null, text }, required: new Map(), optional: new Set() };
  }
  const required = new Map<string, string | null>();
  const optional = new Set<string>();
  if (line !== "none") {
    for (const part of line.split(/,\s*/)) {
      const m = /^([a-z-]+)(\?)?(?: "((?:[^"\\]|\\.)*)")?$/.exec(part);
      if (!m) throw new Error(`${file}: cannot read "${part}" in its Expect line`);
      if (m[2]) optional.add(m[1]!);
      else required.set(m[1]!, m[3] === undefined ? null : (JSON.parse(`"${m[3]}"`) as string));
    }
  }
  return { refused: null, required, optional };
}

function rss(): number {
  (globalThis as { Bun?: { gc(force: boolean): void } }).Bun?.gc(true);
  return process.memoryUsage().rss;
}

/** Batches of events as the daemon sees them: one per refresh (same time). */
function refreshes(events: readonly EndpointEvent[]): EndpointEvent[][] {
  const out: EndpointEvent[][] = [];
  for (const e of events) {
    const last = out[out.length - 1];
    if (last && last[0]!.time === e.time) last.push(e);
    else out.push([e]);
  }
  return out;
}

const files = readdirSync(HOSTILE).filter((f) => f.endsWith(".ts")).sort();
const expectations = new Map(files.map((f) => [f, parseExpectation(f, readFileSync(path.join(HOSTILE, f), "utf8"))]));
const allEvents = parseEventLines(readFileSync(EVENTS, "utf8"), EVENTS);
// The file was recorded with --initial: what existed at start comes first, at the start's time.
const initial = allEvents.filter((e, i) => e.type === "opened" && e.time === allEvents[0]!.time && allEvents.slice(0, i).every((x) => x.time === e.time));
const events = allEvents.slice(initial.length);

/**
 * Each rule in a process of its own: what this file checks is each rule's containment, and a rule
 * stalled in one native call would otherwise cost every rule beside it its state (the shared
 * layout, the default, with such rules: rule-runner.test.ts).
 */
const ISOLATION = "per-rule";

const refusals = new Map<string, Error>();
const loaded = new Map<string, string>();
const reports: RuleReport[] = [];
const actions = new Map<string, RuleAction[]>();
let rules: RuleSet;
let rssBefore = 0;
let rssAfter = 0;
let replayMs = 0;
let memories: { name: string; memoryBytes: number }[] = [];

function collect(list: RuleAction[]): void {
  for (const a of list) {
    let mine = actions.get(a.rule);
    if (!mine) actions.set(a.rule, (mine = []));
    mine.push(a);
  }
}

beforeAll(async () => {
  rssBefore = rss();
  let now = allEvents[0]!.time;
  rules = new RuleSet({ onReport: (r) => reports.push(r), clock: () => now, isolation: ISOLATION });
  await rules.add({ kind: "file", path: GOOD, label: "good-counter.ts" });
  for (const f of files) {
    try {
      const sandbox = await rules.add({ kind: "file", path: path.join(HOSTILE, f), label: f });
      loaded.set(f, sandbox.info.name);
    } catch (err) {
      refusals.set(f, err as Error);
    }
  }
  const started = performance.now();
  const current = new Map<string, Endpoint>();
  for (const e of initial) current.set(endpointKey(e.endpoint), e.endpoint);
  collect((await rules.start(initial.map((e) => e.endpoint))));
  for (const batch of refreshes(events)) {
    now = batch[0]!.time;
    for (const e of batch) {
      if (e.type === "closed") current.delete(endpointKey(e.endpoint));
      else current.set(endpointKey(e.endpoint), e.endpoint);
    }
    collect((await rules.dispatch(batch)));
    collect((await rules.tick([...current.values()], now)));
  }
  replayMs = performance.now() - started;
  memories = rules.loaded.map((l) => ({ name: l.name, memoryBytes: l.memoryBytes }));
  rssAfter = rss();
}, 240_000);

afterAll(() => rules?.dispose());

const reportsOf = (name: string) => reports.filter((r) => r.rule === name);
const actionsOf = (name: string) => actions.get(name) ?? [];

describe("hostile rules", () => {
  it("are at least 25, each with an expectation; the counts refused and loaded are as expected", () => {
    const refusedExpected = files.filter((f) => expectations.get(f)!.refused !== null);
    expect(files.length).toBeGreaterThanOrEqual(25);
    expect([...refusals.keys()].sort()).toEqual(refusedExpected);
    expect(refusals.size + loaded.size).toBe(files.length);
    // 20 refused at load, 26 contained at run time.
    expect({ refused: refusals.size, loaded: loaded.size }).toEqual({ refused: 34, loaded: 36 });
  });

  describe.each(files.filter((f) => expectations.get(f)!.refused !== null))("%s", (file) => {
    it("is refused at load with file:line:col and a clear message", () => {
      const want = expectations.get(file)!.refused!;
      const err = refusals.get(file);
      expect(err, `${file} loaded`).toBeInstanceOf(RuleError);
      const m = /^(.+?):(\d+):(\d+): (.+)$/.exec(err!.message);
      expect(m, err!.message).not.toBeNull();
      expect(m![1]).toBe(file);
      if (want.line !== null) expect(Number(m![2]), err!.message).toBe(want.line);
      if (want.text !== null) expect(m![4]).toContain(want.text);
      // Shown to people through the one escaping rule: no control character reaches a terminal.
      expect(escapeControl(err!.message)).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
    });
  });

  describe.each(files.filter((f) => expectations.get(f)!.refused === null))("%s", (file) => {
    it("is contained at run time with the expected reports", () => {
      const want = expectations.get(file)!;
      const name = loaded.get(file);
      expect(name, `${file} was refused: ${refusals.get(file)?.message}`).toBeDefined();
      const mine = reportsOf(name!);
      const kinds = new Set(mine.map((r) => r.kind));
      for (const [kind, text] of want.required) {
        expect(kinds, `${file}: no ${kind} report`).toContain(kind);
        if (text !== null) expect(mine.filter((r) => r.kind === kind).map((r) => r.message).join("\n")).toContain(text);
      }
      for (const kind of kinds) expect(want.required.has(kind) || want.optional.has(kind), `${file}: unexpected ${kind} report`).toBe(true);
      for (const r of mine) {
        expect(r.file).toBe(file);
        expect(r.message.length).toBeLessThanOrEqual(500);
        expect(escapeControl(formatReport(r))).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
      }
      // Quarantine is the last word: nothing runs, so nothing more is reported.
      const q = mine.findIndex((r) => r.kind === "quarantined");
      if (q >= 0) expect(q).toBe(mine.length - 1);
      expect(rules.loaded.find((l) => l.name === name)!.quarantined).toBe(want.required.has("quarantined"));
    });
  });

  it("never get a close or a kill through", () => {
    for (const [rule, list] of actions) {
      if (rule === "good-counter") continue;
      expect(list.filter((a) => a.action === "close" || a.action === "kill"), rule).toEqual([]);
    }
  });

  it("leave the well-behaved rule exactly one action per event, in order, and nothing to report", () => {
    const good = actionsOf("good-counter");
    expect(good.map((a) => a.reason)).toEqual(events.map((e, i) => `seen ${e.seq} #${i + 1}`));
    expect(good.every((a) => a.rule === "good-counter" && a.action === "log")).toBe(true);
    expect(reportsOf("good-counter")).toEqual([]);
    expect(rules.loaded.find((l) => l.name === "good-counter")!.quarantined).toBe(false);
  });

  it("cost time bounded by their failures, not by the batch sizes", () => {
    // Ten rules overrun or loop; each may cost its first batch's budget and then one event's
    // budget per failure up to quarantine: seconds in all (under 10 on an idle machine). Were
    // each failure to take the rest of its batch's budget again, the endless loop alone would
    // take minutes on the 90-event refresh.
    expect(replayMs).toBeLessThan(90_000);
  });

  describe("contained without a report", () => {
    const opened = events.filter((e) => e.type === "opened");

    it("huge-log: every message is cut to 4096 characters", () => {
      const list = actionsOf("huge-log");
      expect(list).toHaveLength(events.length * 2);
      for (const a of list) {
        expect(a.reason).toHaveLength(4096);
        expect(a.reason.endsWith("\u2026")).toBe(true);
      }
    });

    it("action-flood: at most 10,000 actions for one event, and those only until quarantine", () => {
      const perEvent = new Map<string, number>();
      for (const a of actionsOf("action-flood")) {
        const seq = /^flood (\d+)\./.exec(a.reason)![1]!;
        perEvent.set(seq, (perEvent.get(seq) ?? 0) + 1);
      }
      expect(Math.max(...perEvent.values())).toBe(10_000);
      expect(perEvent.size).toBeLessThanOrEqual(5);
    });

    it("builtin-overrides: the dispatcher still delivers every event, right", () => {
      expect(actionsOf("builtin-overrides").map((a) => a.reason)).toEqual(events.map((e) => `seen ${e.seq}`));
    });

    it("prototype-pollution: exactly its subscribed events, none made up", () => {
      const subscribed = events.filter((e) => e.type !== "counters");
      expect(actionsOf("prototype-pollution").map((a) => a.reason)).toEqual(subscribed.map((e) => `seen ${e.seq}`));
      expect(actionsOf("prototype-pollution").every((a) => a.action === "log" && !("severity" in a))).toBe(true);
    });

    it("array-index-trap: only its own first action per call is lost, and refused", () => {
      const refusedKills = reportsOf("array-index-trap").filter((r) => r.kind === "rejected-action");
      expect(refusedKills.every((r) => r.message.startsWith("kill refused: 1 is not the PID"))).toBe(true);
      expect(actionsOf("array-index-trap").length + refusedKills.length).toBe(opened.length);
    });

    it("host-objects: reaches nothing of the host", () => {
      expect(new Set(actionsOf("host-objects").map((a) => a.reason))).toEqual(new Set(["reached: none"]));
      expect(actionsOf("host-objects")).toHaveLength(opened.length);
    });

    it("deferred-work: queued jobs and finalizers never run", () => {
      // forever() re-queues itself: had any job run, ticks would run ahead of the events.
      expect(actionsOf("deferred-work").map((a) => a.reason)).toEqual(opened.map((_, i) => `ticks ${i + 1}`));
    });

    it("date-math-tamper: ctx.now is still the event's time", () => {
      expect(new Set(actionsOf("date-math-tamper").map((a) => a.reason))).toEqual(new Set(["now is the event's time"]));
    });

    it("forged-close, kill-init, event-tampering: every attempt refused, one report each", () => {
      expect(reportsOf("forged-close").filter((r) => r.kind === "rejected-action")).toHaveLength(opened.length * 4);
      expect(reportsOf("kill-init").filter((r) => r.kind === "rejected-action")).toHaveLength(opened.length * 5);
      expect(reportsOf("event-tampering").filter((r) => r.kind === "rejected-action")).toHaveLength(opened.length);
    });

    it("glob-bomb: the backtracking pattern is answered, the oversized one refused", () => {
      expect(actionsOf("glob-bomb").map((a) => a.reason)).toContain("stars: false");
      expect(actionsOf("glob-bomb").some((a) => a.reason.startsWith("long:"))).toBe(false);
    });
  });

  describe("host memory", () => {
    it("each sandbox stays at or under its WebAssembly ceiling", () => {
      expect(memories.length).toBe(loaded.size + 1);
      for (const m of memories) expect(m.memoryBytes, m.name).toBeLessThanOrEqual(DEFAULT_LIMITS.wasmMemoryBytes);
      // The memory bomb did reach it, so the ceiling is what stopped it.
      expect(memories.find((m) => m.name === "memory-bomb")!.memoryBytes).toBeGreaterThan(32 * MiB);
    });

    it("the process grows by no more than its sandboxes' memories and a fixed allowance", () => {
      const sandboxes = memories.reduce((sum, m) => sum + m.memoryBytes, 0);
      expect(rssAfter - rssBefore).toBeLessThanOrEqual(sandboxes + FIXED_ALLOWANCE);
    });
  });
});

describe("loading and disposing rules repeatedly", () => {
  it("does not grow the process without bound", async () => {
    const sources = ["good-counter.ts", "hostile/23-memory-bomb.ts", "hostile/27-throw-non-errors.ts", "hostile/42-deferred-work.ts"].map((f) => ({
      kind: "file" as const,
      path: path.join(ROOT, "test/fixtures/rules", f),
      label: f,
    }));
    const batch = events.slice(0, 40);
    const round = async () => {
      const set = new RuleSet({ onReport: () => {} });
      for (const s of sources) await set.add(s);
      (await set.dispatch(batch));
      set.dispose();
    };
    for (let i = 0; i < 4; i++) await round();
    const warm = rss();
    for (let i = 0; i < 16; i++) await round();
    const after = rss();
    // Sixteen rounds load 64 sandboxes, the memory bomb's at up to 48 MiB each: were they kept,
    // that would be hundreds of megabytes.
    expect(after - warm).toBeLessThan(96 * MiB);
  }, 240_000);
});
