/**
 * The loaded rules: each in its own sandbox, all fed the same events, their actions checked and
 * resolved against what sockwarden actually saw. A rule that keeps failing is quarantined; the
 * others go on. Reloading a rule keeps the old version running when the new one does not load.
 */
import type { Endpoint, ProcessInfo } from "../engine/types.ts";
import type { EndpointEvent } from "../monitor/events.ts";
import { endpointKey } from "../monitor/endpoint-key.ts";
import { RuleError } from "../errors.ts";
import { encodeEndpoints, encodeEvents } from "./guest-payload.ts";
import { RuleSandbox, DEFAULT_LIMITS, printable, type CallFailure, type GuestAction, type SandboxLimits } from "./sandbox.ts";
import { loadRuleSource, type RuleSource } from "./rule-sources.ts";
import { compileRule } from "./compile-rule.ts";

export type Severity = "info" | "warning" | "critical";

export interface RuleAction {
  rule: string;
  action: "log" | "alert" | "close" | "kill";
  reason: string;
  severity?: Severity;
  endpoint?: Endpoint;
  process?: ProcessInfo | null;
  pid?: number;
  /** The event that led to it, when there is one. */
  seq?: number;
}

export interface RuleReport {
  rule: string;
  file: string;
  kind: "error" | "timeout" | "memory" | "quarantined" | "rejected-action" | "reloaded" | "reload-failed";
  message: string;
  line: number | null;
  column: number | null;
  seq?: number;
}

export interface RuleSetOptions {
  limits?: Partial<SandboxLimits>;
  /** Failures within `failureWindowMs` that quarantine a rule. */
  maxFailures?: number;
  failureWindowMs?: number;
  /** Events per sandbox call. */
  batchSize?: number;
  onReport?: (report: RuleReport) => void;
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
  sandbox: RuleSandbox;
  failures: number[];
  quarantined: boolean;
  nextPeriodic: number;
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

  constructor(private readonly options: RuleSetOptions = {}) {
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.maxFailures = options.maxFailures ?? 5;
    this.windowMs = options.failureWindowMs ?? 60_000;
    this.batchSize = options.batchSize ?? 200;
    this.clock = options.clock ?? Date.now;
    this.steady = options.clock ?? (() => performance.now());
  }

  /** Loads a rule; a rule that does not compile or validate throws a RuleError. */
  async add(source: RuleSource, ruleOptions: unknown = {}): Promise<RuleSandbox> {
    const sandbox = await this.build(source, ruleOptions);
    const duplicate = this.rules.find((r) => r.sandbox.info.name === sandbox.info.name);
    if (duplicate) {
      const at = sandbox.compiled.exportAt ?? { line: 1, column: 1 };
      sandbox.dispose();
      throw new RuleError(source.label, at.line, at.column, `another rule is already named "${sandbox.info.name}" (${duplicate.source.label})`);
    }
    this.rules.push({ source, options: ruleOptions, sandbox, failures: [], quarantined: false, nextPeriodic: this.steady() + sandbox.info.every * 1000 });
    return sandbox;
  }

  private async build(source: RuleSource, ruleOptions: unknown): Promise<RuleSandbox> {
    const text = await loadRuleSource(source);
    const compiled = await compileRule(text, source.label);
    return RuleSandbox.create(compiled, ruleOptions, this.limits);
  }

  /**
   * Loads a new version of a rule from the same source. If it fails to load, the old version
   * keeps running and the failure is reported.
   */
  async reload(label: string): Promise<boolean> {
    const rule = this.rules.find((r) => r.source.label === label);
    if (!rule) return false;
    try {
      const fresh = await this.build(rule.source, rule.options);
      rule.sandbox.dispose();
      rule.sandbox = fresh;
      rule.failures = [];
      rule.quarantined = false;
      rule.nextPeriodic = this.steady() + fresh.info.every * 1000;
      this.report({ rule: fresh.info.name, file: label, kind: "reloaded", message: "reloaded", line: null, column: null });
      return true;
    } catch (err) {
      const e = err as { line?: number | null; column?: number | null; detail?: string; message: string };
      this.report({
        rule: rule.sandbox.info.name, file: label, kind: "reload-failed",
        message: `the new version does not load, the previous one keeps running: ${e.detail ?? e.message}`,
        line: e.line ?? null, column: e.column ?? null,
      });
      return false;
    }
  }

  get names(): string[] {
    return this.rules.map((r) => r.sandbox.info.name);
  }

  get loaded(): readonly { name: string; label: string; quarantined: boolean; memoryBytes: number; info: RuleSandbox["info"] }[] {
    return this.rules.map((r) => ({ name: r.sandbox.info.name, label: r.source.label, quarantined: r.quarantined, memoryBytes: r.sandbox.memoryBytes(), info: r.sandbox.info }));
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
  start(endpoints: readonly Endpoint[]): RuleAction[] {
    if (!this.follow) this.setKnownEndpoints(endpoints);
    const payload = encodeEndpoints(endpoints);
    const out: RuleAction[] = [];
    for (const rule of this.active()) {
      const r = rule.sandbox.call("start", payload, this.clock());
      out.push(...this.accept(rule, r.actions, endpoints, undefined));
      for (const f of r.failures) this.fail(rule, f);
    }
    return out;
  }

  /** Every rule sees every event of the types it subscribed to, in order. */
  dispatch(events: readonly EndpointEvent[]): RuleAction[] {
    const out: RuleAction[] = [];
    if (!this.follow) {
      for (const e of events) {
        if (e.type === "closed") this.own.delete(endpointKey(e.endpoint));
        else this.own.set(endpointKey(e.endpoint), e.endpoint);
      }
    }
    for (let i = 0; i < events.length; i += this.batchSize) {
      const batch = events.slice(i, i + this.batchSize);
      const rules = this.active();
      const perRule: RuleAction[][] = rules.map(() => []);
      // Rules that subscribe to the same event types share one encoding of just those events:
      // encoding, copying and parsing are most of a sandboxed call's cost, and a rule should
      // not pay for events it never sees.
      const groups = new Map<string, number[]>();
      rules.forEach((rule, index) => {
        const key = rule.sandbox.info.on.join(",");
        const members = groups.get(key);
        if (members) members.push(index);
        else groups.set(key, [index]);
      });
      for (const [key, members] of groups) {
        const types = new Set(key.split(","));
        const subset = batch.filter((e) => types.has(e.type));
        if (subset.length === 0) continue;
        const payload = encodeEvents(subset);
        const endpoints = subset.map((e) => e.endpoint);
        for (const index of members) {
          const rule = rules[index]!;
          // Failures past the quarantine threshold would only cost time: the sandbox stops there.
          const now = this.steady();
          const r = rule.sandbox.dispatch(payload, subset.length, this.maxFailures - rule.failures.filter((t) => now - t < this.windowMs).length);
          perRule[index]!.push(...this.accept(rule, r.actions, endpoints, subset));
          for (const f of r.failures) this.fail(rule, f, f.index >= 0 ? subset[f.index]?.seq : undefined);
        }
      }
      // Actions come out in the rules' order, as if each rule had been called in turn.
      for (const actions of perRule) out.push(...actions);
    }
    return out;
  }

  /**
   * Runs periodic hooks that are due at `now` (default: now), with all current endpoints; the
   * list is made only when a hook is due.
   */
  tick(current: readonly Endpoint[] | (() => readonly Endpoint[]), now?: number): RuleAction[] {
    const at = now ?? this.steady();
    const due = this.active().filter((r) => r.sandbox.info.periodic && at >= r.nextPeriodic);
    if (due.length === 0) return [];
    const endpoints = typeof current === "function" ? current() : current;
    const payload = encodeEndpoints(endpoints);
    const out: RuleAction[] = [];
    for (const rule of due) {
      rule.nextPeriodic = at + rule.sandbox.info.every * 1000;
      const r = rule.sandbox.call("periodic", payload, now ?? this.clock());
      out.push(...this.accept(rule, r.actions, endpoints, undefined));
      for (const f of r.failures) this.fail(rule, f);
    }
    return out;
  }

  private active(): LoadedRule[] {
    return this.rules.filter((r) => !r.quarantined);
  }

  /** Checks what the guest asked for and resolves it to real endpoints and processes. */
  private accept(rule: LoadedRule, actions: GuestAction[], refs: readonly Endpoint[], events: readonly EndpointEvent[] | undefined): RuleAction[] {
    const name = rule.sandbox.info.name;
    const out: RuleAction[] = [];
    const reject = (message: string) => this.report({ rule: name, file: rule.source.label, kind: "rejected-action", message, line: null, column: null });
    for (const a of actions) {
      if (!Array.isArray(a) || typeof a[0] !== "string" || typeof a[1] !== "string") continue;
      const [kind, reason] = a as [string, string];
      if (kind === "log") out.push({ rule: name, action: "log", reason });
      else if (kind === "alert") out.push({ rule: name, action: "alert", reason, severity: a[2] as Severity });
      else if (kind === "close") {
        const ep = this.resolveEndpoint(a[2], a[3], refs, events);
        if (!ep) {
          reject(`close refused: not an endpoint sockwarden reported (${reason})`);
          continue;
        }
        const seq = typeof a[2] === "number" && a[2] >= 0 && events ? events[a[2]]?.seq : undefined;
        out.push({ rule: name, action: "close", reason, endpoint: ep, seq });
      } else if (kind === "kill") {
        const pid = a[2];
        const proc = typeof pid === "number" && Number.isInteger(pid) ? this.findProcess(pid, refs) : null;
        if (!proc) {
          reject(`kill refused: ${String(pid)} is not the PID of a process holding a known endpoint (${reason})`);
          continue;
        }
        out.push({ rule: name, action: "kill", reason, process: proc, pid: proc.pid });
      }
    }
    return out;
  }

  private resolveEndpoint(ref: unknown, fields: unknown, refs: readonly Endpoint[], events: readonly EndpointEvent[] | undefined): Endpoint | null {
    if (!Array.isArray(fields)) return null;
    const [protocol, la, lp, ra, rp, cookie] = fields as [string, string, number, string, number, string | null];
    if (typeof ref === "number" && ref >= 0 && ref < refs.length) {
      const ep = refs[ref]!;
      // The guest's reference is only a hint: it must describe the same socket in full (a
      // listener and its accepted connections share the local address), and one that is open.
      const same = ep.protocol === protocol && ep.localAddress === la && ep.localPort === lp && ep.remoteAddress === ra && ep.remotePort === rp && ep.cookie === cookie;
      if (same && events?.[ref]?.type !== "closed") return ep;
    }
    if (cookie !== null) {
      const byCookie = this.known.get(cookie);
      if (byCookie && byCookie.localAddress === la && byCookie.localPort === lp) return byCookie;
    }
    for (const ep of this.known.values()) {
      if (ep.protocol === protocol && ep.localAddress === la && ep.localPort === lp && ep.remoteAddress === ra && ep.remotePort === rp) return ep;
    }
    return null;
  }

  private findProcess(pid: number, refs: readonly Endpoint[]): ProcessInfo | null {
    for (const ep of refs) if (ep.process?.pid === pid) return ep.process;
    for (const ep of this.known.values()) if (ep.process?.pid === pid) return ep.process;
    return null;
  }

  private fail(rule: LoadedRule, f: CallFailure, seq?: number): void {
    const now = this.steady();
    rule.failures = rule.failures.filter((t) => now - t < this.windowMs);
    rule.failures.push(now);
    const name = rule.sandbox.info.name;
    this.report({ rule: name, file: rule.source.label, kind: f.kind, message: f.message, line: f.line, column: f.column, seq });
    if ((rule.failures.length >= this.maxFailures || f.fatal) && !rule.quarantined) {
      rule.quarantined = true;
      this.report({
        rule: name, file: rule.source.label, kind: "quarantined",
        message: `${f.fatal ? "its sandbox cannot go on" : `failed ${rule.failures.length} times within ${Math.round(this.windowMs / 1000)} s`}; it gets no more events until it is reloaded`,
        line: null, column: null,
      });
    }
  }

  private report(r: RuleReport): void {
    this.options.onReport?.(r);
  }

  dispose(): void {
    for (const r of this.rules) r.sandbox.dispose();
    this.rules.length = 0;
  }
}

/** One line for people: `rule NAME (file:line:col): message`. */
export function formatReport(r: RuleReport): string {
  const where = `${r.file}${r.line !== null ? `:${r.line}${r.column !== null ? `:${r.column}` : ""}` : ""}`;
  const seq = r.seq !== undefined ? ` [event ${r.seq}]` : "";
  // Reasons and messages are the rule's text: no control characters reach a terminal.
  return printable(`rule ${r.rule} (${where}): ${r.kind === "error" ? "" : `${r.kind}: `}${r.message}${seq}`);
}

/** Convenience for tools and tests: compile and load once, to check a rule. */
export async function checkRule(source: RuleSource, limits?: Partial<SandboxLimits>) {
  const text = await loadRuleSource(source);
  const compiled = await compileRule(text, source.label);
  const sandbox = await RuleSandbox.create(compiled, {}, { ...DEFAULT_LIMITS, ...limits });
  const info = sandbox.info;
  sandbox.dispose();
  return info;
}
