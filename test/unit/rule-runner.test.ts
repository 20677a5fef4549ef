/**
 * The rule runner: the protocol between the host and the child that holds a rule's sandbox, the
 * host's watchdog over one native call the sandbox cannot interrupt, the host's check of every
 * action row, and deadlines that follow the monotonic clock.
 */
import { afterEach, describe, expect, it } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { RuleSet } from "../../src/rules/rule-set.ts";
import type { RuleReport } from "../../src/model/rule-action.ts";
import { RuleSandbox, DEFAULT_LIMITS } from "../../src/rules/sandbox.ts";
import { compileRule } from "../../src/rules/compile-rule.ts";
import { encodeEvents } from "../../src/rules/guest-payload.ts";
import { checkActionRows, MAX_ACTIONS_PER_CALL, MAX_TEXT_CHARS } from "../../src/rules/action-rows.ts";
import {
  decodeReply, decodeRequest, encodeReply, encodeRequest, FrameReader, ProtocolError, ReplyKind, RequestKind, type ReadReply, type Reply,
} from "../../src/rules/runner/protocol.ts";
import type { EndpointEvent } from "../../src/monitor/events.ts";
import { waitFor } from "./helpers/waits.ts";
import { endpoint } from "../support/endpoints.ts";

/** Whether a process runs (a zombie has ended: only its parent's wait is left). */
function running(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

const ROOT = path.resolve(import.meta.dirname, "../..");
const GOOD = path.join(ROOT, "test/fixtures/rules/good-counter.ts");
const INDEXOF = path.join(ROOT, "test/fixtures/rules/hostile/53-native-indexof.ts");

const ep = endpoint({ remotePort: 25, packetsSent: 0, packetsReceived: 0, rttMs: null, process: null, pids: [] });
const event = (seq: number): EndpointEvent => ({ type: "opened", seq, time: 1_000 + seq, endpoint: ep });

function concat(pieces: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(pieces.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

describe("the runner protocol", () => {
  it("frames come out whole and in order however the stream is cut", () => {
    const replies: Reply[] = [
      { kind: ReplyKind.Ready },
      { kind: ReplyKind.Begin, slot: 3 },
      { kind: ReplyKind.End, slot: 3 },
      { kind: ReplyKind.Result, slot: 3, result: { actionTexts: [`[["log","é\u2028x"]]`, "[]", `[["alert","a","info"]]`], failures: [], memoryBytes: 16 << 20 } },
      { kind: ReplyKind.Retry, slot: 0xffffffff },
      { kind: ReplyKind.LoadFailed, failed: { line: 3, column: 7, message: "nope" } },
    ];
    // As the host reads them: the rows of every text, in order.
    const read: ReadReply[] = replies.map((r) =>
      r.kind === ReplyKind.Result ? { kind: r.kind, slot: 3, result: { actions: [["log", "é\u2028x"], ["alert", "a", "info"]], failures: [], memoryBytes: 16 << 20 } } : r);
    const stream = concat(replies.flatMap((r) => encodeReply(r)));
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: stream.byteLength }), { maxLength: 12 }), (cuts) => {
        const got: ReadReply[] = [];
        const reader = new FrameReader((kind, body) => got.push(decodeReply(kind, body.slice())));
        let from = 0;
        for (const cut of [...new Set(cuts)].sort((a, b) => a - b)) {
          reader.push(stream.subarray(from, cut));
          from = cut;
        }
        reader.push(stream.subarray(from));
        expect(got).toEqual(read);
      }),
      { numRuns: 300 },
    );
  });

  it("a call request carries each payload once and every rule's call exactly; no limit on failures travels as Infinity", () => {
    const payloads = [encodeEvents([event(1), event(2)]), encodeEvents([event(3)])];
    for (const maxFailures of [0, 3, Infinity]) {
      const calls = [
        { slot: 0, payload: 0, count: 2, maxFailures },
        { slot: 7, payload: 1, count: 1, maxFailures: Infinity },
        { slot: 2, payload: 0, count: 2, maxFailures: 1 },
      ];
      const bytes = concat(encodeRequest({ kind: RequestKind.Dispatch, at: 0, payloads, calls }));
      expect(new DataView(bytes.buffer).getUint32(0, true)).toBe(bytes.byteLength - 4);
      const r = decodeRequest(bytes[4]!, bytes.subarray(5));
      expect(r).toEqual({ kind: RequestKind.Dispatch, at: 0, payloads, calls });
    }
    const start = concat(encodeRequest({ kind: RequestKind.Start, at: 1234.5, payloads: [payloads[1]!], calls: [{ slot: 1, payload: 0, count: 1, maxFailures: Infinity }] }));
    expect(decodeRequest(start[4]!, start.subarray(5))).toMatchObject({ kind: RequestKind.Start, at: 1234.5, payloads: [payloads[1]] });
    const unload = concat(encodeRequest({ kind: RequestKind.Unload, slot: 9 }));
    expect(decodeRequest(unload[4]!, unload.subarray(5))).toEqual({ kind: RequestKind.Unload, slot: 9 });
  });

  it("a call request that names a payload it lacks, or is cut short, is refused", () => {
    const good = concat(encodeRequest({ kind: RequestKind.Dispatch, at: 0, payloads: [encodeEvents([event(1)])], calls: [{ slot: 0, payload: 0, count: 1, maxFailures: 1 }] }));
    const body = good.slice(5);
    expect(() => decodeRequest(RequestKind.Dispatch, body.subarray(0, body.byteLength - 1))).toThrow(ProtocolError);
    const wrong = body.slice();
    new DataView(wrong.buffer).setUint32(16 + 4, 1, true);
    expect(() => decodeRequest(RequestKind.Dispatch, wrong)).toThrow(/payload that is not there/);
  });

  it("what the guest wrote is passed on as rows for the host to check, whatever it is", () => {
    const texts = ["undefined", `{"forged":true}`, `"row"`, `[["log","ok"]]`];
    const bytes = concat(encodeReply({ kind: ReplyKind.Result, slot: 0, result: { actionTexts: texts, failures: [], memoryBytes: 1 } }));
    const r = decodeReply(bytes[4]!, bytes.subarray(5));
    expect(r).toEqual({ kind: ReplyKind.Result, slot: 0, result: { actions: ["(the rule's actions were not JSON)", { forged: true }, "row", ["log", "ok"]], failures: [], memoryBytes: 1 } });
    expect(checkActionRows((r as { result: { actions: unknown[] } }).result.actions, 0).rows).toEqual([{ kind: "log", text: "ok" }]);
  });

  it("a reply that is not what the protocol says is refused", () => {
    const text = (s: string) => new TextEncoder().encode(s);
    const result = (header: string, tail = new Uint8Array([0, 0, 0, 0])) => {
      const h = text(header);
      const body = new Uint8Array(4 + h.byteLength + tail.byteLength);
      new DataView(body.buffer).setUint32(0, h.byteLength, true);
      body.set(h, 4);
      body.set(tail, 4 + h.byteLength);
      return body;
    };
    expect(() => decodeReply(ReplyKind.Result, result(`{"slot":0,"failures":[],"memoryBytes":1}`))).not.toThrow();
    expect(() => decodeReply(ReplyKind.Result, result("not json"))).toThrow(ProtocolError);
    expect(() => decodeReply(ReplyKind.Result, result(`{"slot":0,"failures":{},"memoryBytes":1}`))).toThrow(ProtocolError);
    expect(() => decodeReply(ReplyKind.Result, result(`{"slot":0,"failures":[{"index":0,"message":"m","line":null,"column":null,"kind":"toString"}],"memoryBytes":1}`))).toThrow(ProtocolError);
    expect(() => decodeReply(ReplyKind.Result, result(`{"slot":0,"failures":[],"memoryBytes":1}`, new Uint8Array([1, 0, 0, 0, 9, 0, 0, 0])))).toThrow(/short result/);
    expect(() => decodeReply(ReplyKind.Result, result(`{"slot":0,"failures":[],"memoryBytes":1}`, new Uint8Array([0, 0, 0, 0, 7])))).toThrow(/trailing/);
    expect(() => decodeReply(ReplyKind.Result, result(`{"failures":[],"memoryBytes":1}`))).toThrow(ProtocolError);
    expect(() => decodeReply(ReplyKind.Begin, new Uint8Array(0))).toThrow(ProtocolError);
    expect(() => decodeReply(ReplyKind.Loaded, text(`{"info":null,"memoryBytes":1}`))).toThrow(ProtocolError);
    expect(() => decodeReply(99, text("{}"))).toThrow(ProtocolError);
    const reader = new FrameReader(() => {});
    const huge = new Uint8Array(5);
    new DataView(huge.buffer).setUint32(0, 0xfffffff0, true);
    expect(() => reader.push(huge)).toThrow(/out of bounds/);
  });
});

describe("the host's check of action rows", () => {
  it("takes well-formed rows and refuses everything else with a reason", () => {
    const claim = ["tcp", "127.0.0.1", 1000, "127.0.0.1", 25, "1"];
    const { rows, refused } = checkActionRows([
      ["log", "ok"],
      ["alert", "ok", "critical"],
      ["close", "ok", 0, claim],
      ["kill", "ok", 42],
      ["alert", "x", "toString"],
      ["alert", "x", { level: "critical" }],
      ["alert", "x", "emergency\n<0>fake"],
      ["log", "x".repeat(MAX_TEXT_CHARS + 1)],
      ["log", { toString: "x" }],
      ["close", "x", 5, claim],
      ["close", "x", 0, ["sctp", ...claim.slice(1)]],
      ["close", "x", 0, ["tcp", "127.0.0.1", 70000, "127.0.0.1", 25, "1"]],
      ["close", "x", 0, ["tcp", "127.0.0.1", 1, "127.0.0.1", 25, "1; rm"]],
      ["kill", "x", "42"],
      ["kill", "x", 0],
      ["kill", "x", 1.5],
      ["reboot", "x"],
      ["log", "x", "extra"],
      "row",
    ], 1);
    expect(rows).toEqual([
      { kind: "log", text: "ok" },
      { kind: "alert", text: "ok", severity: "critical" },
      { kind: "close", text: "ok", ref: 0, claim: { protocol: "tcp", localAddress: "127.0.0.1", localPort: 1000, remoteAddress: "127.0.0.1", remotePort: 25, cookie: "1" } },
      { kind: "kill", text: "ok", pid: 42 },
    ]);
    expect(refused).toHaveLength(15);
    expect(refused[0]).toBe(`alert refused: severity must be info, warning or critical, not "toString" (action 5 of the call)`);
    expect(refused[2]).toBe(`alert refused: severity must be info, warning or critical, not "emergency\\n<0>fake" (action 7 of the call)`);
    expect(refused[3]).toBe(`log refused: a text of ${MAX_TEXT_CHARS + 1} characters (at most ${MAX_TEXT_CHARS}) (action 8 of the call)`);
  });

  it("a call takes at most its share of actions; the rest are refused in one line", () => {
    const many = Array.from({ length: MAX_ACTIONS_PER_CALL * 2 + 5 }, () => ["log", "x"]);
    expect(checkActionRows(many, 0, 1).rows).toHaveLength(MAX_ACTIONS_PER_CALL);
    const two = checkActionRows(many, 0, 2);
    expect(two.rows).toHaveLength(MAX_ACTIONS_PER_CALL * 2);
    expect(two.refused).toEqual([`5 action(s) beyond the limit of ${MAX_ACTIONS_PER_CALL} per call`]);
  });
});

describe("the watchdog", () => {
  const sets: RuleSet[] = [];
  afterEach(() => {
    for (const s of sets.splice(0)) s.dispose();
  });

  it("with a process per rule, ends a runner stuck in one native call; the other rule gets every event; the rule starts afresh", async () => {
    const reports: RuleReport[] = [];
    const set = new RuleSet({ onReport: (r) => reports.push(r), maxFailures: 3, isolation: "per-rule" });
    sets.push(set);
    await set.add({ kind: "file", path: GOOD, label: "good-counter.ts" });
    await set.add({ kind: "file", path: INDEXOF, label: "53-native-indexof.ts" });
    const stuckPid = set.loaded[1]!.pid;
    expect(stuckPid).not.toBeNull();
    const first = await set.dispatch([event(1), event(2)]);
    expect(first.filter((a) => a.rule === "good-counter").map((a) => a.reason)).toEqual(["seen 1 #1", "seen 2 #2"]);
    expect(first.filter((a) => a.rule === "native-indexof")).toEqual([]);
    expect(reports.map((r) => r.kind)).toEqual(["timeout"]);
    expect(reports[0]!.message).toMatch(/did not answer within \d+ ms .*one native call cannot be interrupted.*starts afresh/);
    // The stuck process is gone (or a zombie, about to be reaped), not left running its call.
    await waitFor("the stuck runner to end", () => !running(stuckPid!), 10_000);
    const second = await set.dispatch([event(3)]);
    expect(second.filter((a) => a.rule === "good-counter").map((a) => a.reason)).toEqual(["seen 3 #3"]);
    expect(set.loaded[1]!.pid).not.toBe(stuckPid);
    await set.dispatch([event(4)]);
    expect(reports.map((r) => r.kind)).toEqual(["timeout", "timeout", "timeout", "quarantined"]);
    expect(set.loaded[1]!.quarantined).toBe(true);
    expect(set.loaded[1]!.pid).toBeNull();
    const after = await set.dispatch([event(5)]);
    expect(after.map((a) => a.reason)).toEqual(["seen 5 #5"]);
  });
});

describe("the watchdog with rules sharing one process", () => {
  it("moves a rule stuck in one native call to a process of its own; the others are told they lost their state, once, and get every event", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sw-shared-"));
    const late = path.join(dir, "late-counter.ts");
    fs.writeFileSync(late, fs.readFileSync(GOOD, "utf8").replace('name: "good-counter"', 'name: "late-counter"'));
    const reports: RuleReport[] = [];
    const set = new RuleSet({ onReport: (r) => reports.push(r), maxFailures: 3 });
    try {
      await set.add({ kind: "file", path: GOOD, label: "good-counter.ts" });
      await set.add({ kind: "file", path: INDEXOF, label: "53-native-indexof.ts" });
      await set.add({ kind: "file", path: late, label: "late-counter.ts" });
      // One process holds all three.
      const shared = set.loaded.map((l) => l.pid);
      expect(shared[0]).not.toBeNull();
      expect(new Set(shared).size).toBe(1);
      const reasons = (list: { rule: string; reason: string }[], rule: string) => list.filter((a) => a.rule === rule).map((a) => a.reason);

      const first = await set.dispatch([event(1), event(2)]);
      expect(reasons(first, "good-counter")).toEqual(["seen 1 #1", "seen 2 #2"]);
      // The rule after the stuck one had not had the batch: the new process gives it to it.
      expect(reasons(first, "late-counter")).toEqual(["seen 1 #1", "seen 2 #2"]);
      expect(reports.map((r) => `${r.rule} ${r.kind}`)).toEqual(["native-indexof timeout", "good-counter restarted", "late-counter restarted"]);
      expect(reports[0]!.message).toMatch(/did not answer within \d+ ms .*one native call cannot be interrupted.*starts afresh.*process of its own/);
      for (const r of reports.slice(1)) expect(r.message).toBe("lost its state: rule native-indexof stalled the sandbox process they shared, so that process was ended; this rule starts afresh in a new one");
      await waitFor("the stuck process to end", () => !running(shared[0]!), 10_000);

      const second = await set.dispatch([event(3)]);
      expect(reasons(second, "good-counter")).toEqual(["seen 3 #1"]);
      expect(reasons(second, "late-counter")).toEqual(["seen 3 #3"]);
      const [good, stuck, after] = set.loaded.map((l) => l.pid);
      expect(good).not.toBeNull();
      expect(after).toBe(good);
      expect(good).not.toBe(shared[0]);
      expect(stuck).not.toBe(good);

      // From now on its overruns end only its own process.
      await set.dispatch([event(4)]);
      expect(reports.filter((r) => r.rule === "native-indexof").map((r) => r.kind)).toEqual(["timeout", "timeout", "timeout", "quarantined"]);
      expect(reports.filter((r) => r.kind === "restarted")).toHaveLength(2);
      expect(set.loaded[1]!.pid).toBeNull();
      const last = await set.dispatch([event(5)]);
      expect(reasons(last, "good-counter")).toEqual(["seen 5 #3"]);
      expect(set.loaded[0]!.pid).toBe(good);
      expect(set.loaded[2]!.pid).toBe(good);
    } finally {
      set.dispose();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("hostile rules sharing one process", () => {
  it("each native stall moves only its rule out; rules the interrupt stops cost nobody their state; the good rule sees every event once", async () => {
    const HOSTILE = path.join(ROOT, "test/fixtures/rules/hostile");
    const natives = ["53-native-indexof.ts", "54-native-split.ts", "55-native-replaceall.ts", "56-native-includes.ts", "57-native-sort.ts"];
    const interrupted = ["21-endless-loop.ts", "40-regex-backtracking.ts", "23-memory-bomb.ts"];
    const reports: RuleReport[] = [];
    const set = new RuleSet({ onReport: (r) => reports.push(r), maxFailures: 2 });
    try {
      await set.add({ kind: "file", path: GOOD, label: "good-counter.ts" });
      for (const f of [...interrupted.slice(0, 2), ...natives, interrupted[2]!]) await set.add({ kind: "file", path: path.join(HOSTILE, f), label: f });
      expect(new Set(set.loaded.map((l) => l.pid)).size).toBe(1);
      const logged: string[] = [];
      for (const batch of [[event(1), event(2)], [event(3)], [event(4), event(5)], [event(6)]]) {
        for (const a of await set.dispatch(batch)) if (a.rule === "good-counter") logged.push(a.reason);
      }
      const why = JSON.stringify(reports.map((r) => `${r.rule} ${r.kind}: ${r.message}`), null, 1);
      // Every event once, in order; the count starts again only where the rule was told so.
      expect(logged.map((l) => l.split(" ")[1]), why).toEqual(["1", "2", "3", "4", "5", "6"]);
      const restarts = reports.filter((r) => r.rule === "good-counter");
      expect(restarts.every((r) => r.kind === "restarted"), why).toBe(true);
      const causes = restarts.map((r) => /rule ([\w-]+) (?:stalled|broke) the sandbox process/.exec(r.message)?.[1]);
      const movedOut = [...new Set(reports.filter((r) => r.kind === "timeout" && r.message.endsWith("in a sandbox process of its own")).map((r) => r.rule))];
      expect(causes.sort(), why).toEqual([...movedOut].sort());
      for (const n of ["native-indexof", "native-split", "native-replaceall", "native-includes", "native-sort"]) expect(movedOut, why).toContain(n);
      expect(movedOut, why).not.toContain("endless-loop");
      expect(movedOut, why).not.toContain("regex-backtracking");
      // All the restarts came in the first batch, in which every native rule first stalled.
      const counts = logged.map((l) => Number(l.split("#")[1]));
      expect(counts.slice(2), why).toEqual([1, 2, 3, 4]);
      for (const l of set.loaded) if (l.name !== "good-counter") expect(l.quarantined, l.name).toBe(true);
    } finally {
      set.dispose();
    }
  }, 120_000);
});

describe("the watchdog over retries", () => {
  it("times each run after a failing event afresh: a run stuck after three retries is ended after its own time", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sw-retry-"));
    const file = path.join(dir, "late-stuck.ts");
    fs.writeFileSync(file, `import { defineRule } from "sockwarden";
export default defineRule({ name: "late-stuck", handle(event, act) {
  if (event.seq <= 3) throw new Error("fails " + event.seq);
  act.log(String("a".repeat(2_000_000).indexOf("a".repeat(1_000_000) + "b")));
} });
`);
    const reports: RuleReport[] = [];
    const set = new RuleSet({ onReport: (r) => reports.push(r), maxFailures: 100 });
    try {
      await set.add({ kind: "file", path: file, label: "late-stuck.ts" });
      await set.dispatch([event(1), event(2), event(3), event(4), event(5)]);
      // What the ended runner had of the batch (the three errors) goes with it: the timeout is told.
      expect(reports.map((r) => r.kind)).toEqual(["timeout"]);
      // The first run may take the batch's shared time (5 events x 50 ms) and the grace; a retry
      // what is left of it, or one event's budget. Summing every retry's time up front would
      // have allowed 2,150 ms.
      const ms = Number(/within (\d+) ms/.exec(reports[0]!.message)?.[1]);
      expect(ms).toBeGreaterThanOrEqual(DEFAULT_LIMITS.callBudgetMs + 800);
      expect(ms).toBeLessThanOrEqual(5 * DEFAULT_LIMITS.callBudgetMs + 800);
    } finally {
      set.dispose();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("a runner's life", () => {
  it("ends with its host, even while it sits in a native call (the host killed with SIGKILL)", async () => {
    const parent = Bun.spawn({ cmd: [process.execPath, path.join(ROOT, "test/fixtures/runner/stuck-parent.ts")], stdout: "pipe", stderr: "pipe" });
    try {
      const reader = (parent.stdout as ReadableStream<Uint8Array>).getReader();
      let text = "";
      // Bounded by the stream's end: the host prints one line, or exits.
      while (!/runner \d+\n/.test(text)) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      const pid = Number(/runner (\d+)/.exec(text)?.[1]);
      expect(pid).toBeGreaterThan(0);
      // Inside the call: the runner spends CPU time.
      const cpu = () => {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
        const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        return Number(f[11]) + Number(f[12]);
      };
      const before = cpu();
      await waitFor("the runner to be busy in its call", () => cpu() > before + 5, 20_000);
      parent.kill(9);
      await parent.exited;
      await waitFor("the runner to end with its host", () => !running(pid), 10_000);
    } finally {
      parent.kill(9);
    }
  });
});

describe("deadlines", () => {
  const realNow = Date.now;
  afterEach(() => {
    Date.now = realNow;
  });

  it("follow the monotonic clock: a wall clock set back does not stall the interrupt", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sw-deadline-"));
    try {
      const source = `import { defineRule } from "sockwarden";\nexport default defineRule({ name: "spin", handle() { for (;;) {} } });\n`;
      const sandbox = await RuleSandbox.create(await compileRule(source, "spin.ts"), {}, DEFAULT_LIMITS);
      try {
        // Every reading an hour earlier than the one before.
        let wall = realNow();
        Date.now = () => (wall -= 3_600_000);
        const r = sandbox.dispatch(encodeEvents([event(1)]), 1);
        expect(r.failures.map((f) => f.kind)).toEqual(["timeout"]);
      } finally {
        Date.now = realNow;
        sandbox.dispose();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
