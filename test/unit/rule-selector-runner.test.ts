/**
 * Rules with a `select`, run in real rule-runner processes: a rule is called only with the events
 * and endpoints its selection lets through (its handle counts its calls and says so), a batch with
 * nothing for it costs it no call into its runner, what it closes is the endpoint it was shown,
 * and a selection the host refuses leaves no rule and no process behind. `rules check` through the
 * executable says the same refusal in one line.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { RuleSet } from "../../src/rules/rule-set.ts";
import { RulePool } from "../../src/rules/runner/rule-pool.ts";
import { RuleError } from "../../src/errors.ts";
import { validateRuleOptions } from "../../src/rules/rule-options.ts";
import type { RuleAction, RuleReport } from "../../src/model/rule-action.ts";
import type { Endpoint } from "../../src/model/endpoint.ts";
import type { EndpointEvent } from "../../src/monitor/events.ts";
import { endpoint, listener } from "../support/endpoints.ts";
import { waitFor } from "./helpers/waits.ts";
import { EXECUTABLE, requireExecutable } from "../e2e/helpers/sockwarden.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sw-select-"));
let rules: RuleSet | null = null;

afterEach(() => {
  rules?.dispose();
  rules = null;
  vi.restoreAllMocks();
});

function ruleFile(name: string, body: string): { kind: "file"; path: string; label: string } {
  const file = path.join(dir, `${name}.ts`);
  fs.writeFileSync(file, `import { defineRule } from "sockwarden";\n${body}`);
  return { kind: "file", path: file, label: `${name}.ts` };
}

/** Logs each call of each hook: how many calls it has had, and what it was given. */
const COUNTING = (name: string, select: string, on = `["opened", "state-changed", "closed"]`) => `
let calls = 0;
const at = (ep: { localPort: number; remotePort: number }) => ep.localPort + ">" + ep.remotePort;
export default defineRule({
  name: "${name}",
  on: ${on},
  options: { port: 25 },
  select: ${select},
  start(endpoints, act) { act.log("start " + endpoints.map(at).join(" ")); },
  periodic(endpoints, act) { act.log("periodic " + endpoints.map(at).join(" ")); },
  every: 1,
  handle(event, act) {
    calls++;
    act.log("#" + calls + " " + event.seq + " " + event.type + " " + at(event.endpoint));
    if (event.endpoint.state === "ESTABLISHED" && event.type === "opened") act.close(event.endpoint, "selected");
  },
});
`;

let seq = 0;
const ev = (type: EndpointEvent["type"], ep: Endpoint, previousState?: EndpointEvent["previousState"]): EndpointEvent =>
  ({ type, seq: ++seq, time: 1_000 + seq, endpoint: ep, ...(previousState !== undefined ? { previousState } : {}) });
const conn = (localPort: number, remotePort: number, o: Partial<Endpoint> = {}) =>
  endpoint({ localPort, remotePort, remoteAddress: "198.51.100.7", cookie: String(localPort), inode: localPort, ...o });

/** This process's children that have not ended (a zombie has: only its parent's wait is left). */
function children(): number[] {
  const out: number[] = [];
  for (const pid of fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
      const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(ppid) === process.pid && state !== "Z") out.push(Number(pid));
    } catch {
      // Gone while listed.
    }
  }
  return out;
}

const logs = (actions: RuleAction[], rule: string) => actions.filter((a) => a.rule === rule && a.action === "log").map((a) => a.reason);

describe("a rule with a selection, in its runner", () => {
  it("is called only for the events it selects, and not at all for a batch with none", async () => {
    seq = 0;
    rules = new RuleSet();
    await rules.add(ruleFile("smtp", COUNTING("smtp", `(o) => ({ protocols: "tcp", states: "ESTABLISHED", remotePorts: o.port })`)), { port: 587 });
    await rules.add(ruleFile("all", COUNTING("all", "undefined")));
    const run = vi.spyOn(RulePool.prototype, "run");

    const a = conn(40000, 587, { state: "SYN_SENT" });
    const other = conn(40001, 443);
    const udp = conn(40002, 587, { protocol: "udp", state: null });
    const first = [ev("opened", a), ev("opened", other), ev("opened", udp), ev("state-changed", { ...a, state: "ESTABLISHED" }, "SYN_SENT")];
    const out1 = await rules.dispatch(first);
    expect(logs(out1, "smtp")).toEqual(["#1 4 state-changed 40000>587"]);
    expect(logs(out1, "all")).toHaveLength(4);

    // Nothing for smtp in this batch: only the rule without a selection is called.
    run.mockClear();
    const out2 = await rules.dispatch([ev("opened", conn(40003, 80)), ev("closed", other)]);
    expect(logs(out2, "smtp")).toEqual([]);
    expect(run).toHaveBeenCalledTimes(1);
    expect(run.mock.calls[0]![3].map((c) => c.rule.info.name)).toEqual(["all"]);

    // Its stay in ESTABLISHED ends with the change out of it; the close in TIME_WAIT is not its.
    const out3 = await rules.dispatch([ev("state-changed", { ...a, state: "FIN_WAIT1" }, "ESTABLISHED"), ev("state-changed", { ...a, state: "TIME_WAIT" }, "FIN_WAIT1"), ev("closed", { ...a, state: "TIME_WAIT" })]);
    expect(logs(out3, "smtp")).toEqual(["#2 7 state-changed 40000>587"]);

    // Nothing in a batch for any rule: no runner is called.
    run.mockClear();
    const none = new RuleSet();
    try {
      await none.add(ruleFile("smtp2", COUNTING("smtp2", `{ remotePorts: 25 }`)));
      expect(await none.dispatch([ev("opened", other)])).toEqual([]);
      expect(run).not.toHaveBeenCalled();
    } finally {
      none.dispose();
    }
  }, 60_000);

  it("closes the endpoint of the event it was given, though the batch held others before it", async () => {
    seq = 0;
    rules = new RuleSet();
    await rules.add(ruleFile("closer", COUNTING("closer", `{ remotePorts: 25 }`)));
    const target = conn(41000, 25);
    const batch = [ev("opened", conn(41001, 80)), ev("opened", conn(41002, 81)), ev("opened", target)];
    const out = await rules.dispatch(batch);
    const closes = out.filter((a) => a.action === "close");
    expect(closes).toHaveLength(1);
    expect(closes[0]).toMatchObject({ reason: "selected", seq: 3, endpoint: { localPort: 41000, remotePort: 25 } });
  }, 60_000);

  it("start and periodic are shown only the endpoints it selects, and still called with none", async () => {
    let now = 10_000;
    rules = new RuleSet({ clock: () => now });
    await rules.add(ruleFile("listeners", COUNTING("listeners", `[{ protocols: "tcp", states: "LISTEN" }, { protocols: "udp", remotePorts: 0 }]`)));
    await rules.add(ruleFile("nothing", COUNTING("nothing", "[]")));
    const table = [
      listener({ localPort: 22 }), conn(42000, 443), listener({ localPort: 53, protocol: "udp", state: null }),
      conn(42001, 53, { protocol: "udp", state: null }), listener({ localPort: 8080, state: "CLOSE" }),
    ];
    const started = await rules.start(table);
    expect(logs(started, "listeners")).toEqual(["start 22>0 53>0"]);
    expect(logs(started, "nothing")).toEqual(["start "]);
    now += 1_500;
    const ticked = await rules.tick(table, now);
    expect(logs(ticked, "listeners")).toEqual(["periodic 22>0 53>0"]);
    expect(logs(ticked, "nothing")).toEqual(["periodic "]);
  }, 60_000);

  it("a selection the host refuses: a RuleError at its export, no rule loaded, its runner ended", async () => {
    const reports: RuleReport[] = [];
    rules = new RuleSet({ isolation: "per-rule", onReport: (r) => reports.push(r) });
    const before = children();
    const bad = rules.add(ruleFile("bad", COUNTING("bad", `{ remotePorts: [25, 65536] }`)));
    await expect(bad).rejects.toBeInstanceOf(RuleError);
    await expect(bad).rejects.toThrow(/^bad\.ts:5:1: select\.remotePorts\[1\]: expected a port, a whole number from 0 to 65535, not 65536$/);
    expect(rules.loaded).toEqual([]);
    // Earlier tests' runners may still be ending: only a process started since counts.
    await waitFor("the refused rule's runner to end", () => children().every((pid) => before.includes(pid)), 10_000, () => `children ${children()} before ${before}`);
    // The set goes on: a good rule loads after it.
    await rules.add(ruleFile("good", COUNTING("good", `{ protocols: "tcp" }`)));
    expect(rules.names).toEqual(["good"]);
    expect(reports).toEqual([]);
  }, 60_000);
});

describe("a selection worked out from configured options", () => {
  it("of the wrong type: the rule loads given nothing, for the options' check to tell; of the right type but no port: refused", async () => {
    seq = 0;
    rules = new RuleSet();
    const select = `(o) => ({ remotePorts: o.port })`;
    const { info } = await rules.add(ruleFile("misfit", COUNTING("misfit", select)), { port: "twenty-five" });
    expect(validateRuleOptions(info.name, info.optionTypes, { port: "twenty-five" }, ["options"]).map((p) => p.message)).toEqual([
      `expected a number (the rule's default is 25), not "twenty-five"`,
    ]);
    expect(logs(await rules.dispatch([ev("opened", conn(43000, 25))]), "misfit")).toEqual([]);
    await expect(rules.add(ruleFile("far", COUNTING("far", select)), { port: 70000 })).rejects.toThrow(/far\.ts:5:1: select\.remotePorts: expected a port, a whole number from 0 to 65535, not 70000$/);
  }, 60_000);
});

describe("rules check", () => {
  it("refuses a bad selection in one line naming the file, line, column and field; exit 1", () => {
    requireExecutable();
    const file = path.join(dir, "check-bad.ts");
    fs.writeFileSync(file, `import { defineRule } from "sockwarden";\n\nexport default defineRule({\n  name: "check-bad",\n  select: { states: ["ESTABLISHED", "SYN-SENT" as never] },\n  handle() {},\n});\n`);
    const r = spawnSync(EXECUTABLE, ["rules", "check", file], { encoding: "utf8", timeout: 60_000 });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr.trim().split("\n")).toEqual([expect.stringMatching(/check-bad\.ts:3:1: select\.states\[1\]: expected a TCP state \(ESTABLISHED, .*\), not "SYN-SENT"$/)]);
  }, 60_000);
});
