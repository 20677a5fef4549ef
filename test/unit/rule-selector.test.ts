/**
 * A rule's `select`: the host's check of the data the guest hands over (every field, its values,
 * its bounds), the guest's copy of it in the real QuickJS sandbox (each value read once, nothing
 * of the rule's run outside it), and which events and endpoints a checked selection lets through.
 * The runners that route by it: rule-selector-runner.test.ts.
 */
import { afterEach, describe, expect, it } from "vitest";
import { compileRule } from "../../src/rules/compile-rule.ts";
import { RuleSandbox } from "../../src/rules/sandbox.ts";
import { DEFAULT_LIMITS, type SandboxLimits } from "../../src/rules/sandbox-types.ts";
import { checkSelection, MAX_FIELD_VALUES, MAX_SELECTORS, SELECT_ALL, type Selection } from "../../src/rules/selector.ts";
import { addressClass, selectionMatcher } from "../../src/rules/selector-match.ts";
import type { EndpointEvent } from "../../src/monitor/events.ts";
import type { Endpoint } from "../../src/model/endpoint.ts";
import { endpoint, listener } from "../support/endpoints.ts";

function checked(raw: unknown): Selection {
  const r = checkSelection(raw);
  if ("problem" in r) throw new Error(r.problem);
  return r;
}

function problem(raw: unknown): string {
  const r = checkSelection(raw);
  if (!("problem" in r)) throw new Error(`accepted: ${JSON.stringify(raw)}`);
  return r.problem;
}

describe("the host's check of a selection", () => {
  it("no select selects everything; one value stands for a list of one; lists come out sorted and without repeats", () => {
    expect(checkSelection(null)).toBe(SELECT_ALL);
    expect(checkSelection(undefined)).toBe(SELECT_ALL);
    expect(checked({ protocols: "tcp", remotePorts: 25 }).selectors).toEqual([{ protocols: ["tcp"], remotePorts: [25] }]);
    expect(checked([{ localPorts: [443, 80, 443, 8080] }, {}]).selectors).toEqual([{ localPorts: [80, 443, 8080] }, {}]);
    // Written in any order, one selection has one key: its rules share one batch.
    expect(checked({ states: ["LISTEN", "ESTABLISHED"], protocols: "tcp" }).key).toBe(checked({ protocols: ["tcp"], states: ["ESTABLISHED", "LISTEN", "LISTEN"] }).key);
    expect(checked([]).selectors).toEqual([]);
  });

  it.each([
    [{ protocols: "sctp" }, 'select.protocols: expected a protocol (tcp, udp), not "sctp"'],
    [{ protocols: ["tcp", 6] }, "select.protocols[1]: expected a protocol (tcp, udp), not 6"],
    [{ states: "LISTENING" }, 'select.states: expected a TCP state (ESTABLISHED, SYN_SENT'],
    [{ states: ["listen"] }, 'select.states[0]: expected a TCP state'],
    [{ localPorts: 65536 }, "select.localPorts: expected a port, a whole number from 0 to 65535, not 65536"],
    [{ localPorts: [-1] }, "select.localPorts[0]: expected a port, a whole number from 0 to 65535, not -1"],
    [{ remotePorts: [25.5] }, "select.remotePorts[0]: expected a port, a whole number from 0 to 65535, not 25.5"],
    [{ remotePorts: ["25"] }, 'select.remotePorts[0]: expected a port, a whole number from 0 to 65535, not "25"'],
    [{ remotePorts: [null] }, "select.remotePorts[0]: expected a port, a whole number from 0 to 65535, not null"],
    [{ remote: "internet" }, 'select.remote: expected an address class (public, private, loopback, unspecified), not "internet"'],
    [{ remote: [["public"]] }, "select.remote[0]: expected an address class (public, private, loopback, unspecified), not a list of 1 values"],
    [{ protocols: "tcp", hosts: ["a"] }, 'select: unknown field "hosts"; a selector has protocols, states, localPorts, remotePorts, remote'],
    [{ __proto__: null, constructor: 1 }, 'select: unknown field "constructor"'],
    ["tcp", 'select: expected a selector, an object of protocols, states, localPorts, remotePorts, remote, not "tcp"'],
    [[{ protocols: "tcp" }, 7], "select[1]: expected a selector"],
    [[{}, { remotePorts: [1, 2, 70000] }], "select[1].remotePorts[2]: expected a port"],
    // What the guest writes for what is not data (guest-prelude.ts) is named as it wrote it.
    [{ localPorts: [{ $not: "NaN" }] }, "select.localPorts[0]: expected a port, a whole number from 0 to 65535, not NaN"],
    [{ localPorts: { $not: "a list of 4294967295 elements" } }, "select.localPorts: expected one value or a list of at most 1024, not a list of 4294967295 elements"],
    [{ $not: "a Promise object" }, "select: expected a selector, an object of protocols, states, localPorts, remotePorts, remote, not a Promise object"],
    [{ $not: "a list of 99999 elements" }, "select: at most 64 selectors, not a list of 99999 elements"],
    [{ protocols: { $not: "a \u001b[31mred\u0007 object" } }, "select.protocols: expected a protocol (tcp, udp), not a ?[31mred? object"],
  ])("refuses %j: %s", (raw, message) => {
    expect(problem(raw)).toContain(message);
  });

  it("refuses lists past their bounds before looking at their values", () => {
    const huge = new Array(10_000_000).fill("tcp");
    expect(problem({ protocols: huge })).toBe(`select.protocols: at most ${MAX_FIELD_VALUES} values, not 10000000`);
    expect(problem(new Array(MAX_SELECTORS + 1).fill({}))).toBe(`select: at most ${MAX_SELECTORS} selectors, not ${MAX_SELECTORS + 1}`);
    expect(checked({ localPorts: Array.from({ length: MAX_FIELD_VALUES }, (_, i) => i) }).selectors![0]!.localPorts).toHaveLength(MAX_FIELD_VALUES);
    expect(problem({ protocols: "tcp", states: "LISTEN", localPorts: 1, remotePorts: 2, remote: "public", a: 1 })).toContain("at most the fields");
  });

  it("takes a JSON round trip of any accepted selection to the same selection", () => {
    const s = checked([{ remote: ["public", "loopback"], protocols: "udp" }, { states: "CLOSE_WAIT", localPorts: 0 }]);
    expect(checked(JSON.parse(JSON.stringify(s.selectors)))).toEqual(s);
  });
});

const ev = (type: EndpointEvent["type"], ep: Endpoint, previousState?: EndpointEvent["previousState"]): EndpointEvent =>
  ({ type, seq: 1, time: 0, endpoint: ep, ...(previousState !== undefined ? { previousState } : {}) });

describe("which events and endpoints a selection lets through", () => {
  const smtp = selectionMatcher(checked({ protocols: "tcp", states: "ESTABLISHED", remotePorts: 25 }));
  const mail = endpoint({ remotePort: 25, remoteAddress: "198.51.100.7" });

  it("every field given must match; a list of selectors is any of them", () => {
    expect(smtp.event(ev("opened", mail))).toBe(true);
    expect(smtp.event(ev("opened", { ...mail, remotePort: 587 }))).toBe(false);
    expect(smtp.event(ev("opened", { ...mail, protocol: "udp", state: null }))).toBe(false);
    expect(smtp.event(ev("opened", { ...mail, state: "SYN_SENT" }))).toBe(false);
    const either = selectionMatcher(checked([{ localPorts: 22 }, { protocols: "udp" }]));
    expect(either.endpoint(endpoint({ localPort: 22 }))).toBe(true);
    expect(either.endpoint(endpoint({ protocol: "udp", state: null }))).toBe(true);
    expect(either.endpoint(endpoint({ localPort: 23 }))).toBe(false);
    expect(selectionMatcher(checked([])).endpoint(mail)).toBe(false);
    expect(selectionMatcher(checked({ localPorts: [] })).endpoint(mail)).toBe(false);
    expect(selectionMatcher(SELECT_ALL).event(ev("counters", mail))).toBe(true);
  });

  it("states: the state entered or left by a change; a closed endpoint's last state; never a UDP endpoint", () => {
    expect(smtp.event(ev("state-changed", mail, "SYN_SENT"))).toBe(true);
    // Left ESTABLISHED: the rule is told the stay ended.
    expect(smtp.event(ev("state-changed", { ...mail, state: "FIN_WAIT1" }, "ESTABLISHED"))).toBe(true);
    expect(smtp.event(ev("state-changed", { ...mail, state: "TIME_WAIT" }, "FIN_WAIT1"))).toBe(false);
    expect(smtp.event(ev("closed", mail))).toBe(true);
    expect(smtp.event(ev("closed", { ...mail, state: "FIN_WAIT2" }))).toBe(false);
    // An opened or closed event's previousState, should one carry it, is not a state left.
    expect(smtp.event(ev("opened", { ...mail, state: "SYN_SENT" }, "ESTABLISHED"))).toBe(false);
    expect(smtp.endpoint({ ...mail, state: "CLOSE_WAIT" })).toBe(false);
    const listening = selectionMatcher(checked({ states: "LISTEN" }));
    expect(listening.endpoint(listener())).toBe(true);
    expect(listening.endpoint(listener({ protocol: "udp", state: null }))).toBe(false);
  });

  it("remote: classes as isPrivate and isLoopback judge the address; private takes loopback in", () => {
    expect(["0.0.0.0", "::", "::ffff:0.0.0.0", "127.0.0.1", "::1", "::ffff:127.0.0.5", "10.1.2.3", "fe80::1", "100.64.0.1", "fd00::1", "93.184.216.34", "2001:db8::1", "224.0.0.1", "not an address"].map(addressClass))
      .toEqual(["unspecified", "unspecified", "unspecified", "loopback", "loopback", "loopback", "private", "private", "private", "private", "public", "public", "public", "public"]);
    const privateOnly = selectionMatcher(checked({ remote: "private" }));
    expect(privateOnly.endpoint(endpoint({ remoteAddress: "127.0.0.1" }))).toBe(true);
    expect(privateOnly.endpoint(endpoint({ remoteAddress: "192.168.1.1" }))).toBe(true);
    expect(privateOnly.endpoint(endpoint({ remoteAddress: "93.184.216.34" }))).toBe(false);
    expect(privateOnly.endpoint(listener())).toBe(false);
    const loopbackOnly = selectionMatcher(checked({ remote: "loopback" }));
    expect(loopbackOnly.endpoint(endpoint({ remoteAddress: "192.168.1.1" }))).toBe(false);
    expect(selectionMatcher(checked({ remote: "unspecified" })).endpoint(listener())).toBe(true);
  });
});

describe("the guest's copy, in the real sandbox", () => {
  let sandboxes: RuleSandbox[] = [];
  afterEach(() => {
    for (const s of sandboxes) s.dispose();
    sandboxes = [];
  });

  async function load(body: string, options: unknown = {}, limits: SandboxLimits = DEFAULT_LIMITS): Promise<unknown> {
    const source = `import { defineRule } from "sockwarden";\n${body}`;
    const sandbox = await RuleSandbox.create(await compileRule(source, "select-rule.ts"), options, limits);
    sandboxes.push(sandbox);
    return sandbox.info.select;
  }

  it("without select the host is told null; the function form is called once with the merged options", async () => {
    expect(await load(`export default defineRule({ name: "r", handle() {} });`)).toBeNull();
    const text = `let calls = 0;
      export default defineRule({ name: "r", options: { port: 25, other: 1 },
        select: (o) => { calls++; return { remotePorts: [o.port, o.other, calls] }; }, handle() {} });`;
    expect(await load(text, { port: 587 })).toEqual({ remotePorts: [587, 1, 1] });
  });

  it("reads each value once: a getter that changes its answer, or throws on a second read, gives its first", async () => {
    const raw = await load(`let n = 0;
      const s = { get protocols() { if (n++ > 0) throw new Error("read twice"); return "tcp"; }, get remote() { return n++ === 1 ? "public" : "bogus"; } };
      export default defineRule({ name: "r", select: s, handle() {} });`);
    expect(raw).toEqual({ protocols: "tcp", remote: "public" });
    expect(checked(raw).selectors).toEqual([{ protocols: ["tcp"], remote: ["public"] }]);
  });

  it("writes what is not data as what it is, without calling any of the rule's hooks", async () => {
    const raw = await load(`class Ports { toJSON() { return [25]; } }
      const own = Object.prototype.hasOwnProperty;
      Object.defineProperty(Object.prototype, "toJSON", { configurable: true, value(this: object) { return own.call(this, "protocols") ? { protocols: "tcp" } : this; } });
      const hooks = { toString() { throw new Error("toString ran"); }, valueOf() { throw new Error("valueOf ran"); } };
      export default defineRule({ name: "r", select: [{ localPorts: [NaN, Infinity, -0, 1e21], remotePorts: new Ports() as never,
        protocols: hooks as never, states: (() => 1) as never, remote: [Symbol("x"), 10n, undefined] as never }], handle() {} });`);
    expect(raw).toEqual([{
      localPorts: [{ $not: "NaN" }, { $not: "Infinity" }, 0, 1e21],
      remotePorts: { $not: "a Object object" },
      protocols: { toString: { $not: "a function" }, valueOf: { $not: "a function" } },
      states: { $not: "a function" },
      remote: [{ $not: "a symbol" }, { $not: "a bigint" }, { $not: "undefined" }],
    }]);
    expect(problem(raw)).toBe("select[0].localPorts[0]: expected a port, a whole number from 0 to 65535, not NaN");
  });

  it("bounds what it walks: an endless list by its length, deep nesting, too many values", async () => {
    expect(await load(`export default defineRule({ name: "r", select: { localPorts: new Array(2 ** 32 - 1) }, handle() {} });`))
      .toEqual({ localPorts: { $not: "a list of 4294967295 elements" } });
    // A length the rule made up, which tells itself as a megabyte of text: a message's worth goes over.
    const madeUp = await load(`const length = { valueOf: () => 1e9, toString: () => "x".repeat(1 << 20) };
      export default defineRule({ name: "r", select: { localPorts: new Proxy([], { get: (t, k) => (k === "length" ? length : undefined) }) as never }, handle() {} });`);
    expect(madeUp).toEqual({ localPorts: { $not: `a list of ${"x".repeat(70)}` } });
    expect(await load(`export default defineRule({ name: "r", select: { remote: [[[["public"]]]] as never }, handle() {} });`))
      .toEqual({ remote: [[[{ $not: "a value nested 4 levels deep" }]]] });
    const tooMany = load(`const many = Array.from({ length: 1024 }, () => Array.from({ length: 32 }, () => 1));
      export default defineRule({ name: "r", select: many.map((l) => ({ a: l, b: l, c: l, d: l, e: l, f: l, g: l, h: l, i: l, j: l, k: l, l: l, m: l, n: l, o: l, p: l })) as never, handle() {} });`,
      // Walking 400,000 values took over the default second of load time on a loaded machine: the
      // size bound, not the time budget, is what this case is about.
      {}, { ...DEFAULT_LIMITS, callBudgetMs: 1000 });
    await expect(tooMany).rejects.toThrow(/select is too large: more than 400000 values/);
  });

  it("a select that throws refuses the rule at the line that threw", async () => {
    await expect(load(`export default defineRule({ name: "r", select: () => {\n  throw new RangeError("no ports");\n}, handle() {} });`))
      .rejects.toThrow(/select-rule\.ts:3:\d+: RangeError: no ports/);
  });
});
