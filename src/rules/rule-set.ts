/**
 * The loaded rules: each in its own sandbox, all fed the same events, their actions checked and
 * resolved against what sockwarden actually saw. A rule that keeps failing is quarantined; the
 * others go on. Reloading a rule keeps the old version running when the new one does not load.
 */
import type { Endpoint } from "../model/endpoint.ts";
import type { EndpointEvent } from "../monitor/events.ts";
import { endpointKey } from "../monitor/endpoint-key.ts";
import { RuleError } from "../errors.ts";
import { encodeBatch, encodeLists, routeKey, type EncodedGroup } from "./event-routing.ts";
import { DEFAULT_LIMITS, type CallFailure, type DispatchResult, type RuleInfo, type SandboxLimits } from "./sandbox.ts";
import { loadRuleSource, type RuleSource } from "./rule-locations.ts";
import { compileRule } from "./compile-rule.ts";
import { RulePool, type PoolCall, type PooledRule, type RuleIsolation } from "./runner/rule-pool.ts";
import { resolveActions } from "./resolve-actions.ts";
import { validateRuleOptions } from "./rule-options.ts";
import type { RuleAction, RuleReport } from "../model/rule-action.ts";

export interface RuleSetOptions {
  limits?: Partial<SandboxLimits>;
  /** Failures within `failureWindowMs` that quarantine a rule. */
  maxFailures?: number;
  failureWindowMs?: number;
  /**
   * Events per call into a rule's runner. Each call costs a round trip between processes (three
   * small frames and a payload), so larger batches spread it thinner: 1000 measured about 15 %
   * faster than 200 for one rule.
   */
  batchSize?: number;
  onReport?: (report: RuleReport) => void;
  /**
   * "shared" (the default): every rule in one runner process, each in its own sandbox; a rule
   * that stalls that process is moved to one of its own. "per-rule": a process for each rule.
   */
  isolation?: RuleIsolation;
  /**
   * Milliseconds now (test seam). Given, it drives schedules and failure windows too; by default
   * rules are told the wall clock while schedules and windows follow a monotonic one, so that a
   * wall clock set back neither stops periodic hooks nor stretches failure windows.
   */
  clock?: () => number;
}

interface LoadedRule {
  source: RuleSource;
  options: unknown;
  runner: PooledRule;
  failures: number[];
  quarantined: boolean;
  nextPeriodic: number;
}

/** What add() tells about a rule it loaded. */
export interface LoadedRuleInfo {
  info: RuleInfo;
}

export class RuleSet {
  private readonly rules: LoadedRule[] = [];
  private readonly limits: SandboxLimits;
  private readonly maxFailures: number;
  private readonly windowMs: number;
  private readonly batchSize: number;
  private readonly clock: () => number;
  private readonly steady: () => number;
  /** Endpoints sockwarden currently knows, by key: what a close may target. */
  private own = new Map<string, Endpoint>();
  /** Where the table is someone else's (the daemon's monitor): read, never written here. */
  private follow: (() => ReadonlyMap<string, Endpoint>) | null = null;
  /** Calls into the rules run one after another, in the order they were made. */
  private turn: Promise<unknown> = Promise.resolve();
  private disposed = false;
  private readonly pool: RulePool;
  /** Rules that lost their state through another's fault: told after the call's own reports. */
  private notices: { runner: PooledRule; message: string }[] = [];

  constructor(private readonly options: RuleSetOptions = {}) {
    this.pool = new RulePool(options.isolation ?? "shared", (runner, message) => this.notices.push({ runner, message }));
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.maxFailures = options.maxFailures ?? 5;
    this.windowMs = options.failureWindowMs ?? 60_000;
    this.batchSize = options.batchSize ?? 1000;
    this.clock = options.clock ?? Date.now;
    this.steady = options.clock ?? (() => performance.now());
  }

  private inTurn<T>(work: () => Promise<T>): Promise<T> {
    const run = this.turn.then(work).finally(() => this.tellNotices());
    this.turn = run.catch(() => {});
    return run;
  }

  /** Loads a rule; a rule that does not compile or validate throws a RuleError. */
  add(source: RuleSource, ruleOptions: unknown = {}): Promise<LoadedRuleInfo> {
    return this.inTurn(async () => {
      const runner = await this.build(source, ruleOptions);
      const duplicate = this.rules.find((r) => r.runner.info.name === runner.info.name);
      if (duplicate || this.disposed) {
        const at = runner.compiled.exportAt ?? { line: 1, column: 1 };
        runner.dispose();
        if (this.disposed) throw new RuleError(source.label, null, null, "the rule set was closed while the rule loaded");
        throw new RuleError(source.label, at.line, at.column, `another rule is already named "${runner.info.name}" (${duplicate!.source.label})`);
      }
      this.rules.push({ source, options: ruleOptions, runner, failures: [], quarantined: false, nextPeriodic: this.steady() + runner.info.every * 1000 });
      return { info: runner.info };
    });
  }

  private async build(source: RuleSource, ruleOptions: unknown): Promise<PooledRule> {
    const text = await loadRuleSource(source);
    const compiled = await compileRule(text, source.label);
    return this.pool.add(compiled, ruleOptions, this.limits);
  }

  /**
   * Loads a new version of a rule from the same source. If it fails to load, the old version
   * keeps running and the failure is reported.
   */
  reload(label: string): Promise<boolean> {
    return this.inTurn(async () => {
      const rule = this.rules.find((r) => r.source.label === label);
      if (!rule || this.disposed) return false;
      try {
        const fresh = await this.build(rule.source, rule.options);
        // The options configured for the old version must suit the new one's defaults too.
        const configured = rule.options && typeof rule.options === "object" && Object.keys(rule.options).length > 0;
        const problems = configured ? validateRuleOptions(fresh.info.name, fresh.info.optionTypes, rule.options, ["options"]) : [];
        if (problems.length > 0) {
          fresh.dispose();
          const p = problems[0]!;
          throw new RuleError(label, null, null, `its configured ${p.path.join(".")}: ${p.message}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ""}`);
        }
        rule.runner.dispose();
        rule.runner = fresh;
        rule.failures = [];
        rule.quarantined = false;
        rule.nextPeriodic = this.steady() + fresh.info.every * 1000;
        this.report({ rule: fresh.info.name, file: label, kind: "reloaded", message: "its file changed; the new version runs now", line: null, column: null });
        return true;
      } catch (err) {
        const e = err as { line?: number | null; column?: number | null; detail?: string; message: string };
        this.report({
          rule: rule.runner.info.name, file: label, kind: "reload-failed",
          message: `the new version does not load, the previous one keeps running: ${e.detail ?? e.message}`,
          line: e.line ?? null, column: e.column ?? null,
        });
        return false;
      }
    });
  }

  get names(): string[] {
    return this.rules.map((r) => r.runner.info.name);
  }

  get loaded(): readonly { name: string; label: string; quarantined: boolean; memoryBytes: number; pid: number | null; info: RuleInfo }[] {
    return this.rules.map((r) => ({ name: r.runner.info.name, label: r.source.label, quarantined: r.quarantined, memoryBytes: r.runner.memoryBytes(), pid: r.runner.pid, info: r.runner.info }));
  }

  private get known(): ReadonlyMap<string, Endpoint> {
    return this.follow ? this.follow() : this.own;
  }

  /** Replaces what close may target (e.g. each refresh's endpoints). */
  setKnownEndpoints(endpoints: Iterable<Endpoint>): void {
    this.follow = null;
    this.own = new Map();
    for (const ep of endpoints) this.own.set(endpointKey(ep), ep);
  }

  /**
   * Takes what close may target from a table kept elsewhere, by endpointKey (the monitor's, which
   * already holds each refresh's outcome), instead of a copy kept up to date here.
   */
  followKnownEndpoints(table: () => ReadonlyMap<string, Endpoint>): void {
    this.follow = table;
  }

  /** Calls every rule's start hook with the endpoints that exist now. */
  start(endpoints: readonly Endpoint[]): Promise<RuleAction[]> {
    if (!this.follow) this.setKnownEndpoints(endpoints);
    return this.inTurn(() => this.runHook("start", this.clock(), this.active(), endpoints));
  }

  /**
   * Every rule sees every event of the types it subscribed to that its selection lets through,
   * in order, each in its own runner; actions come out in the rules' order.
   */
  dispatch(events: readonly EndpointEvent[]): Promise<RuleAction[]> {
    if (!this.follow) {
      for (const e of events) {
        if (e.type === "closed") this.own.delete(endpointKey(e.endpoint));
        else this.own.set(endpointKey(e.endpoint), e.endpoint);
      }
    }
    return this.inTurn(async () => {
      const out: RuleAction[] = [];
      const batches: EndpointEvent[][] = [];
      for (let i = 0; i < events.length; i += this.batchSize) batches.push(events.slice(i, i + this.batchSize));
      let encoded = this.encodeBatch(batches[0] ?? [], this.active());
      for (let b = 0; b < batches.length; b++) {
        const rules = this.active();
        const running = this.runBatch(rules, encoded);
        if (b + 1 < batches.length) {
          // While the first rule's runner works on this batch, the next one is encoded here: the
          // turn to the event loop lets the request go out first.
          await new Promise<void>((resolve) => setImmediate(resolve));
          encoded = this.encodeBatch(batches[b + 1]!, rules);
        }
        const results = await running;
        // Closed while the rules ran (the daemon stopping): nothing more is told or done.
        if (this.disposed) return [];
        rules.forEach((rule, index) => {
          const done = results[index];
          if (!done) return;
          const { r, subset } = done;
          out.push(...this.accept(rule, r.actions, subset.map((e) => e.endpoint), subset));
          for (const f of r.failures) this.fail(rule, f, f.index >= 0 ? subset[f.index]?.seq : undefined);
        });
      }
      return out;
    });
  }

  /** Each rule's events: those of its types that its selection lets through (event-routing.ts). */
  private encodeBatch(batch: readonly EndpointEvent[], rules: readonly LoadedRule[]): Map<string, EncodedGroup> {
    return encodeBatch(batch, rules.map((r) => r.runner));
  }

  /**
   * One request per runner process for the whole batch, each distinct subset once; inside, one
   * rule at a time: a rule's time budget is wall time, and rules running side by side would each
   * be charged for the others' use of the CPU.
   */
  private async runBatch(rules: readonly LoadedRule[], encoded: Map<string, EncodedGroup>): Promise<({ r: DispatchResult; subset: EndpointEvent[] } | null)[]> {
    const payloads: Uint8Array[] = [];
    const index = new Map<EncodedGroup, number>();
    const calls: PoolCall[] = [];
    const callOf: (number | null)[] = [];
    const now = this.steady();
    for (const rule of rules) {
      const group = encoded.get(routeKey(rule.runner));
      if (!group?.payload || rule.quarantined) {
        callOf.push(null);
        continue;
      }
      let p = index.get(group);
      if (p === undefined) {
        index.set(group, (p = payloads.length));
        payloads.push(group.payload);
      }
      // Failures past the quarantine threshold would only cost time: the sandbox stops there.
      const left = this.maxFailures - rule.failures.filter((t) => now - t < this.windowMs).length;
      callOf.push(calls.length);
      calls.push({ rule: rule.runner, payload: p, count: group.subset.length, maxFailures: left });
    }
    const results = calls.length > 0 ? await this.pool.run("dispatch", 0, payloads, calls) : [];
    return rules.map((rule, i) => {
      const c = callOf[i];
      if (c === null || c === undefined) return null;
      return { r: results[c]!, subset: encoded.get(routeKey(rule.runner))!.subset };
    });
  }

  /**
   * Runs periodic hooks that are due at `now` (default: now), with all current endpoints; the
   * list is made only when a hook is due.
   */
  tick(current: readonly Endpoint[] | (() => readonly Endpoint[]), now?: number): Promise<RuleAction[]> {
    return this.inTurn(async () => {
      const at = now ?? this.steady();
      const due = this.active().filter((r) => r.runner.info.periodic && at >= r.nextPeriodic);
      if (due.length === 0) return [];
      const endpoints = typeof current === "function" ? current() : current;
      for (const rule of due) rule.nextPeriodic = at + rule.runner.info.every * 1000;
      return this.runHook("periodic", now ?? this.clock(), due, endpoints);
    });
  }

  /**
   * One hook that is shown the endpoints (start, periodic), run in the given rules: each rule is
   * called, with the endpoints its selection lets through (none, if none do).
   */
  private async runHook(kind: "start" | "periodic", at: number, rules: readonly LoadedRule[], endpoints: readonly Endpoint[]): Promise<RuleAction[]> {
    const { lists, listOf } = encodeLists(endpoints, rules.map((r) => r.runner));
    const results = await this.pool.run(kind, at, lists.map((l) => l.payload), rules.map((rule, i) => hookCall(rule.runner, listOf[i]!)));
    const out: RuleAction[] = [];
    if (this.disposed) return out;
    rules.forEach((rule, i) => {
      out.push(...this.accept(rule, results[i]!.actions, lists[listOf[i]!]!.endpoints, undefined));
      for (const f of results[i]!.failures) this.fail(rule, f);
    });
    return out;
  }

  private active(): LoadedRule[] {
    return this.rules.filter((r) => !r.quarantined);
  }

  /**
   * Checks what the guest asked for and resolves it to real endpoints and processes
   * (resolve-actions.ts); anything refused is reported as a rejected action.
   */
  private accept(rule: LoadedRule, actions: unknown, refs: readonly Endpoint[], events: readonly EndpointEvent[] | undefined): RuleAction[] {
    const name = rule.runner.info.name;
    const { out, refused } = resolveActions(name, actions, refs, events, this.known);
    // Each refusal is told; the daemon folds repeated reports into counts.
    for (const message of refused) this.report({ rule: name, file: rule.source.label, kind: "rejected-action", message: message.slice(0, 1000), line: null, column: null });
    return out;
  }

  private fail(rule: LoadedRule, f: CallFailure, seq?: number): void {
    const now = this.steady();
    rule.failures = rule.failures.filter((t) => now - t < this.windowMs);
    rule.failures.push(now);
    const name = rule.runner.info.name;
    this.report({ rule: name, file: rule.source.label, kind: f.kind, message: f.message, line: f.line, column: f.column, seq });
    if ((rule.failures.length >= this.maxFailures || f.fatal) && !rule.quarantined) {
      rule.quarantined = true;
      // A quarantined rule holds no process: a reload starts a new one.
      rule.runner.dispose();
      this.report({
        rule: name, file: rule.source.label, kind: "quarantined",
        message: `${f.fatal ? "its sandbox cannot go on" : `failed ${rule.failures.length} times within ${Math.round(this.windowMs / 1000)} s`}; it gets no more events until it is reloaded`,
        line: null, column: null,
      });
    }
  }

  private tellNotices(): void {
    for (const { runner, message } of this.notices.splice(0)) {
      const rule = this.rules.find((r) => r.runner === runner);
      if (rule && !this.disposed) this.report({ rule: runner.info.name, file: rule.source.label, kind: "restarted", message, line: null, column: null });
    }
  }

  private report(r: RuleReport): void {
    this.options.onReport?.(r);
  }

  /** Ends every rule's runner at once (also while a call is under way: it then returns nothing). */
  dispose(): void {
    this.disposed = true;
    this.pool.dispose();
    this.rules.length = 0;
  }
}

/**
 * One line: `rule NAME (file:line:col): message`. The rule's text is kept as it is (JSON sinks
 * carry it exactly); whatever prints it for people escapes it (text/escape-control.ts).
 */
export function formatReport(r: RuleReport): string {
  const where = `${r.file}${r.line !== null ? `:${r.line}${r.column !== null ? `:${r.column}` : ""}` : ""}`;
  const seq = r.seq !== undefined ? ` [event ${r.seq}]` : "";
  return `rule ${r.rule} (${where}): ${r.kind === "error" ? "" : `${r.kind}: `}${r.message}${seq}`;
}

function hookCall(rule: PooledRule, payload: number): PoolCall {
  return { rule, payload, count: 1, maxFailures: Infinity };
}

/** Convenience for tools and tests: compile and load once, to check a rule. */
export async function checkRule(source: RuleSource, limits?: Partial<SandboxLimits>): Promise<RuleInfo> {
  const text = await loadRuleSource(source);
  const compiled = await compileRule(text, source.label);
  const pool = new RulePool("per-rule", () => {});
  try {
    return (await pool.add(compiled, {}, { ...DEFAULT_LIMITS, ...limits })).info;
  } finally {
    pool.dispose();
  }
}
