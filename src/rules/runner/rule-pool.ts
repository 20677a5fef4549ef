/**
 * Where each loaded rule runs. By default every rule shares one runner process ("shared"): each
 * still has its own QuickJS module, memory and limits there, but one batch of events is one
 * request and one process is woken, whatever the number of rules. "per-rule" gives each rule a
 * process of its own, as a stronger wall between rules.
 *
 * The watchdog stays per rule call. When a rule's call overruns in the shared process (one native
 * call that nothing in the process can interrupt), or the process breaks while that rule runs,
 * the process is ended: that rule is told (timeout or error, as when it runs alone) and from then
 * on runs in a process of its own; the other rules lost their state with the process, are told
 * so and why, and start afresh in a new shared process, which also runs the calls of the batch
 * they had not had yet.
 */
import { RuleError } from "../../errors.ts";
import type { CompiledRule } from "../compile-rule.ts";
import type { CallFailure, DispatchResult, RuleInfo, SandboxLimits } from "../sandbox.ts";
import { RequestKind, type CallRequest, type LoadRequest, type SlotCall } from "./protocol.ts";
import { RuleRunner, type RunnerLoss } from "./rule-runner.ts";
import { checkSelection, type Selection } from "../selector.ts";
import { validateRuleOptions } from "../rule-options.ts";

export type RuleIsolation = "shared" | "per-rule";
export const RULE_ISOLATIONS: readonly RuleIsolation[] = ["shared", "per-rule"];

export type HookKind = "dispatch" | "start" | "periodic";

/** One rule's call: which of the payloads it takes, how many events they hold. */
export interface PoolCall {
  rule: PooledRule;
  payload: number;
  count: number;
  maxFailures: number;
}

interface Home {
  runner: RuleRunner;
  members: Set<PooledRule>;
  shared: boolean;
  /** Its process was lost: the members are loaded into a new one before the next call. */
  stale: boolean;
}

/** A loaded rule as the rule set holds it. */
export class PooledRule {
  memory = 0;
  /** Set when its sandbox could not be started again: each call then fails for good. */
  broken: string | null = null;
  disposed = false;

  constructor(
    readonly slot: number,
    readonly compiled: CompiledRule,
    readonly load: LoadRequest,
    public info: RuleInfo,
    public home: Home,
    private readonly pool: RulePool,
    /** Which events and endpoints the rule is given, as checked on the host. */
    readonly selection: Selection,
  ) {}

  /** Bytes of WebAssembly memory the rule held after its last call. */
  memoryBytes(): number {
    return this.memory;
  }

  /** The process its sandbox lives in (for memory accounting); null when none holds it. */
  get pid(): number | null {
    return this.disposed || this.broken !== null || this.home.stale ? null : this.home.runner.pid;
  }

  dispose(): void {
    this.pool.remove(this);
  }
}

export class RulePool {
  private nextSlot = 0;
  private shared: Home | null = null;
  /** Every home, to end them all at once. */
  private readonly homes = new Set<Home>();
  private disposed = false;

  /** `notify` tells a rule that it lost its state through no fault of its own. */
  constructor(
    readonly isolation: RuleIsolation,
    private readonly notify: (rule: PooledRule, message: string) => void,
  ) {}

  private newHome(shared: boolean): Home {
    const home: Home = { runner: new RuleRunner(), members: new Set(), shared, stale: true };
    this.homes.add(home);
    return home;
  }

  /** Loads a rule; a rule that does not load throws a RuleError. */
  async add(compiled: CompiledRule, options: unknown, limits: SandboxLimits): Promise<PooledRule> {
    const load: LoadRequest = {
      file: compiled.file, code: compiled.code, mappings: compiled.lines.mappings, exportAt: compiled.exportAt ?? null,
      options: options ?? {}, limits,
    };
    const home = this.isolation === "shared" ? (this.shared ??= this.newHome(true)) : this.newHome(false);
    if (home.stale && home.members.size === 0) {
      try {
        await home.runner.boot();
      } catch (err) {
        this.homes.delete(home);
        if (home === this.shared) this.shared = null;
        throw new RuleError(compiled.file, null, null, (err as Error).message);
      }
      home.stale = false;
    } else if (home.stale) {
      await this.revive(home);
    }
    const slot = this.nextSlot++;
    let rule: PooledRule;
    let selection: ReturnType<typeof checkSelection>;
    try {
      const loaded = await home.runner.load(slot, load);
      // The guest's select is only data it claims: checked here, before anything is routed by it.
      selection = checkSelection(loaded.info.select);
      rule = new PooledRule(slot, compiled, load, loaded.info, home, this, "problem" in selection ? SELECT_NOTHING : selection);
      rule.memory = loaded.memoryBytes;
      home.members.add(rule);
    } catch (err) {
      if (!home.runner.running) {
        this.lost(home, null, `a rule loading from ${compiled.file} stalled or broke the sandbox process the rules shared`);
        if (home.members.size === 0) home.runner.end();
      }
      if (!home.shared) {
        home.runner.end();
        this.homes.delete(home);
      }
      throw err;
    }
    if ("problem" in selection && !optionsMisfit(rule.info, options)) {
      // Refused as the guest's own definition errors are: at its `export default`.
      rule.dispose();
      const at = compiled.exportAt ?? { line: 1, column: 1 };
      throw new RuleError(compiled.file, at.line, at.column, selection.problem);
    }
    return rule;
  }

  /**
   * Runs a call for each rule given, one rule at a time; one request per process. The results
   * come in the calls' order.
   */
  async run(kind: HookKind, at: number, payloads: readonly Uint8Array[], calls: readonly PoolCall[]): Promise<DispatchResult[]> {
    const results: DispatchResult[] = calls.map(() => ({ actions: [], failures: [] }));
    const byHome = new Map<Home, number[]>();
    calls.forEach((c, i) => {
      if (c.rule.disposed) return;
      const list = byHome.get(c.rule.home);
      if (list) list.push(i);
      else byHome.set(c.rule.home, [i]);
    });
    for (const [home, indexes] of byHome) await this.runIn(home, kind, at, payloads, calls, indexes, results);
    return results;
  }

  private async runIn(
    home: Home, kind: HookKind, at: number, payloads: readonly Uint8Array[], calls: readonly PoolCall[], indexes: number[], results: DispatchResult[],
  ): Promise<void> {
    if (this.disposed) return;
    if (home.stale) await this.revive(home);
    const live: number[] = [];
    for (const i of indexes) {
      const rule = calls[i]!.rule;
      if (rule.broken !== null) results[i] = { actions: [], failures: [failure(rule.broken, "error", true)] };
      else if (rule.home === home && !rule.disposed) live.push(i);
    }
    if (live.length === 0) return;
    // Only the payloads these calls take travel, each once.
    const used = new Map<number, number>();
    const request: CallRequest = { kind: KINDS[kind], at, payloads: [], calls: [] };
    for (const i of live) {
      const c = calls[i]!;
      let p = used.get(c.payload);
      if (p === undefined) {
        used.set(c.payload, (p = request.payloads.length));
        request.payloads.push(payloads[c.payload]!);
      }
      request.calls.push({ slot: c.rule.slot, payload: p, count: c.count, maxFailures: c.maxFailures } satisfies SlotCall);
    }
    const limits = new Map(live.map((i) => [calls[i]!.rule.slot, calls[i]!.rule.load.limits]));
    const outcome = await home.runner.run(request, (slot) => limits.get(slot)!);
    outcome.results.forEach((r, k) => {
      if (!r) return;
      const rule = calls[live[k]!]!.rule;
      rule.memory = r.memoryBytes;
      results[live[k]!] = { actions: r.actions as DispatchResult["actions"], failures: r.failures };
    });
    if (!outcome.lost || this.disposed) return;
    const lost = outcome.lost;
    const culprit = lost.call === null ? null : calls[live[lost.call]!]!.rule;
    const unanswered = live.filter((_, k) => outcome.results[k] === null && (lost.call === null || k > lost.call));
    if (culprit) {
      results[live[lost.call!]!] = { actions: [], failures: [failure(culpritMessage(lost, home.shared), lost.timedOut !== null ? "timeout" : "error", false)] };
      if (home.shared) this.isolate(culprit);
      else home.stale = true;
    }
    // Rules whose call failed with the process are told by that failure.
    const failed = new Set(culprit ? [] : unanswered.map((i) => calls[i]!.rule));
    this.lost(home, culprit, culprit ? `rule ${culprit.info.name} ${lost.timedOut !== null ? "stalled" : "broke"} the sandbox process they shared` : null, lost, failed);
    if (culprit && unanswered.length > 0) {
      // The rules after it have not seen the batch: a new process runs it for them.
      await this.runIn(home, kind, at, payloads, calls, unanswered, results);
    } else {
      const detail = `its sandbox ended unexpectedly (${lost.broken ?? "no answer"}); it starts afresh, without the state it had`;
      for (const i of unanswered) results[i] = { actions: [], failures: [failure(detail, "error", false)] };
    }
  }

  /** A rule that overran in the shared process goes on in a process of its own. */
  private isolate(rule: PooledRule): void {
    rule.home.members.delete(rule);
    const own = this.newHome(false);
    own.members.add(rule);
    rule.home = own;
  }

  /**
   * A home's process is gone: its members lose their state. In a shared one, each is told why
   * (`cause` names the rule that caused it, if any); the rules are loaded again before the next call.
   */
  private lost(home: Home, culprit: PooledRule | null, cause: string | null, loss?: RunnerLoss, told: ReadonlySet<PooledRule> = new Set()): void {
    home.stale = true;
    if (!home.shared) return;
    const why = cause ?? `the sandbox process it shared with other rules ended unexpectedly (${loss?.broken ?? "no answer"})`;
    for (const rule of home.members) {
      if (rule === culprit || told.has(rule)) continue;
      this.notify(rule, `lost its state: ${why}, so that process was ended; this rule starts afresh in a new one`);
    }
  }

  /**
   * Starts a home's process and loads its members. A member that no longer loads fails for good
   * on its next call; one whose load ended the process is dropped from it, and the others are
   * loaded into a new one (bounded by the number of members).
   */
  private async revive(home: Home): Promise<void> {
    for (let attempt = 0; attempt <= home.members.size; attempt++) {
      try {
        await home.runner.boot();
      } catch (err) {
        for (const rule of home.members) rule.broken = `its sandbox could not be started again: ${(err as Error).message}`;
        home.members.clear();
        home.stale = false;
        return;
      }
      let again = false;
      for (const rule of [...home.members]) {
        try {
          const loaded = await home.runner.load(rule.slot, rule.load);
          rule.memory = loaded.memoryBytes;
        } catch (err) {
          const e = err as { detail?: string; message: string };
          rule.broken = `its sandbox could not be started again: ${e.detail ?? e.message}`;
          home.members.delete(rule);
          if (!home.runner.running) {
            again = true;
            break;
          }
        }
      }
      if (!again) break;
    }
    home.stale = false;
  }

  /** Unloads a rule; a process left without rules is ended. */
  remove(rule: PooledRule): void {
    if (rule.disposed) return;
    rule.disposed = true;
    const home = rule.home;
    home.members.delete(rule);
    if (home.members.size === 0 || !home.shared) {
      home.runner.end();
      home.stale = true;
      if (home !== this.shared) this.homes.delete(home);
    } else if (!home.stale) {
      home.runner.unload(rule.slot);
    }
  }

  /** Ends every process at once. */
  dispose(): void {
    this.disposed = true;
    for (const h of this.homes) h.runner.end();
    this.homes.clear();
  }
}

const SELECT_NOTHING: Selection = { selectors: [], key: "" };

/**
 * A select worked out from configured options of the wrong type is their fault, and whoever
 * configured them checks them before any hook runs and tells where they were set; until then the
 * rule is given nothing.
 */
function optionsMisfit(info: RuleInfo, options: unknown): boolean {
  if (options === null || typeof options !== "object" || Object.keys(options).length === 0) return false;
  return validateRuleOptions(info.name, info.optionTypes, options, ["options"]).length > 0;
}

const KINDS = { dispatch: RequestKind.Dispatch, start: RequestKind.Start, periodic: RequestKind.Periodic } as const;

function culpritMessage(lost: RunnerLoss, shared: boolean): string {
  const own = shared ? "; from now on it runs in a sandbox process of its own" : "";
  return lost.timedOut !== null
    ? `did not answer within ${lost.timedOut} ms (its time budget plus a grace; one native call cannot be interrupted), so its sandbox was ended; it starts afresh, without the state it had${own}`
    : `its sandbox ended unexpectedly (${lost.broken}); it starts afresh, without the state it had${own}`;
}

function failure(message: string, kind: CallFailure["kind"], fatal: boolean): CallFailure {
  return { index: -1, message, line: null, column: null, kind, fatal };
}
