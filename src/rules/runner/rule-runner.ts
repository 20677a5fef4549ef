/**
 * The host's side of one rule runner (runner-child.ts), which holds one or more rules, each in a
 * numbered slot: starts the child, loads rules into it, sends it calls and waits for each rule's
 * answer under a watchdog of its own. The sandbox inside the child interrupts a rule that
 * overruns between bytecodes; the watchdog is for what that cannot interrupt (one long native
 * call): when a rule's call has not answered by its own deadline plus a grace, the child is
 * killed and the outcome says which call it was in. What then happens to the rules it held is
 * rule-pool.ts's choice. The host's event loop is never held meanwhile.
 */
import { RuleError } from "../../errors.ts";
import type { SandboxLimits } from "../sandbox.ts";
import { ReplyKind, RequestKind, type CallRequest, type LoadedReply, type LoadRequest, type ResultRead } from "./protocol.ts";
import { RunnerProcess, type Outcome } from "./runner-process.ts";

export { runnerCommand } from "./runner-process.ts";

/** Time a runner may take to start (not the rule's time: the process and QuickJS coming up). */
const START_TIMEOUT_MS = 30_000;
/** Beyond the rule's own deadline, before the host ends its runner. */
const GRACE_MS = 500;
/** What the sandbox allows itself for a load, beyond which the host gives up on it. */
const LOAD_TIMEOUT_MS = 30_000;
/** The runner's own work around a call (copying a payload in, a result out): bounded, but not the rule's. */
const RUNNER_WORK_MS = 30_000;
/** Retries a call can announce: one per event of a batch, at most. */
const MAX_RETRY_FRAMES = 1 << 20;

/**
 * Milliseconds a call may take, from its Begin, before its runner is ended: what the sandbox
 * allows the call's first run (the same sums as sandbox.ts: a batch shares one deadline; start
 * and periodic get ten events' budget), plus the sandbox's own short steps and the grace.
 */
export function callAllowanceMs(kind: CallRequest["kind"], count: number, limits: SandboxLimits): number {
  const budget = limits.callBudgetMs;
  if (kind === RequestKind.Dispatch) return batchMs(count, budget) + 300 + GRACE_MS;
  return Math.max(budget * 10, 100) + 300 + GRACE_MS;
}

/** The deadline a batch's events share in the sandbox (sandbox.ts runDispatch). */
function batchMs(count: number, budget: number): number {
  return Math.min(budget * count, 10_000);
}

/**
 * After a Retry: the rest of the batch's shared time, or one event's budget when none is left
 * (as the sandbox sets it), plus the steps between runs and the grace.
 */
function retryAllowanceMs(kind: CallRequest["kind"], count: number, limits: SandboxLimits, elapsedMs: number): number {
  const n = kind === RequestKind.Dispatch ? count : 1;
  return Math.round(Math.max(batchMs(n, limits.callBudgetMs) - elapsedMs, limits.callBudgetMs)) + 300 + GRACE_MS;
}

/** How a runner was lost during a request; `call` is the index of the call it was in, if any. */
export interface RunnerLoss {
  call: number | null;
  /** The rule's allowance that ran out, ms; null when the child broke instead. */
  timedOut: number | null;
  broken: string | null;
}

export interface RunOutcome {
  /** Each call's result, in the request's order; null for those that got none. */
  results: (ResultRead | null)[];
  lost: RunnerLoss | null;
}

export class RuleRunner {
  private child: RunnerProcess | null = null;
  private busy: Promise<unknown> = Promise.resolve();

  /** The child's process id; null when none runs. */
  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  get running(): boolean {
    return this.child?.alive === true;
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const run = this.busy.then(work);
    this.busy = run.catch(() => {});
    return run;
  }

  /** Starts a child (ending any that runs): its slots are empty. Throws an Error when it does not come up. */
  boot(): Promise<void> {
    return this.serial(async () => {
      this.end();
      const child = new RunnerProcess();
      this.child = child;
      const ready = await child.await(START_TIMEOUT_MS);
      if (!("reply" in ready) || ready.reply.kind !== ReplyKind.Ready) {
        this.end();
        throw new Error(`cannot start the sandbox: ${describe(ready, START_TIMEOUT_MS)}`);
      }
    });
  }

  /**
   * Loads a rule into a slot; a rule that does not load throws a RuleError. A load that overran
   * or broke the child leaves no child running (`running` says so).
   */
  load(slot: number, load: LoadRequest): Promise<LoadedReply> {
    return this.serial(async () => {
      const child = this.child;
      if (!child?.alive) throw new RuleError(load.file, null, null, "cannot start the sandbox: its runner is not running");
      const loaded = await child.exchange({ kind: RequestKind.Load, slot, load }, LOAD_TIMEOUT_MS);
      if ("reply" in loaded && loaded.reply.kind === ReplyKind.Loaded) return loaded.reply.loaded;
      if ("reply" in loaded && loaded.reply.kind === ReplyKind.LoadFailed) {
        const f = loaded.reply.failed;
        throw new RuleError(load.file, f.line, f.column, f.message);
      }
      this.end();
      throw new RuleError(load.file, 1, 1, "timedOut" in loaded ? "took longer than its time budget while loading" : `cannot load: ${describe(loaded, LOAD_TIMEOUT_MS)}`);
    });
  }

  /** Drops a slot's sandbox in the child (no answer is waited for). */
  unload(slot: number): void {
    void this.serial(async () => {
      if (this.child?.alive) await this.child.send({ kind: RequestKind.Unload, slot });
    });
  }

  /**
   * Runs a request's calls, each rule in turn, under the watchdog: each call's time is counted
   * from its own Begin. When a call overruns or the child breaks, the child is ended and the
   * outcome says in which call; the calls after it get no result.
   */
  run(request: CallRequest, limitsOf: (slot: number) => SandboxLimits): Promise<RunOutcome> {
    return this.serial(async () => {
      const results: (ResultRead | null)[] = request.calls.map(() => null);
      if (request.calls.length === 0) return { results, lost: null };
      const child = this.child;
      if (!child?.alive) return { results, lost: { call: null, timedOut: null, broken: "not running" } };
      const lose = (call: number | null, o: Outcome): RunOutcome => {
        this.end();
        const timedOut = "timedOut" in o ? o.timedOut : null;
        return { results, lost: { call, timedOut, broken: timedOut === null ? ("broken" in o ? o.broken : "out of step") : null } };
      };
      let next = child.await(RUNNER_WORK_MS);
      await child.send(request);
      for (const [i, call] of request.calls.entries()) {
        // Before its Begin, the runner is between calls: its own work, nobody's fault.
        const begun = await next;
        if (!("reply" in begun) || begun.reply.kind !== ReplyKind.Begin || begun.reply.slot !== call.slot) return lose(null, begun);
        const limits = limitsOf(call.slot);
        const beganAt = performance.now();
        let wait = callAllowanceMs(request.kind, call.count, limits);
        // Each run of the handler after a failing event is timed afresh, as the sandbox times it: a
        // call stuck in its first run is ended after its first run's time, not after every retry's.
        for (let step = 0; ; step++) {
          const o = await child.await(wait);
          if (!("reply" in o)) return lose(i, o);
          if (o.reply.kind === ReplyKind.End && o.reply.slot === call.slot) break;
          if (o.reply.kind !== ReplyKind.Retry || o.reply.slot !== call.slot || step > MAX_RETRY_FRAMES) return lose(i, o);
          wait = retryAllowanceMs(request.kind, call.count, limits, performance.now() - beganAt);
        }
        const result = await child.await(RUNNER_WORK_MS);
        if (!("reply" in result) || result.reply.kind !== ReplyKind.Result || result.reply.slot !== call.slot) return lose(i, result);
        results[i] = result.reply.result;
        if (i + 1 < request.calls.length) next = child.await(RUNNER_WORK_MS);
      }
      return { results, lost: null };
    });
  }

  /** Ends the child, if any, at once. */
  end(): void {
    const child = this.child;
    this.child = null;
    child?.kill();
  }
}

function describe(o: Outcome, ms: number): string {
  if ("timedOut" in o) return `no answer within ${ms} ms`;
  if ("broken" in o) return o.broken;
  return "unexpected reply";
}
