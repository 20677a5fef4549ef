/**
 * The host's side of one rule runner (runner-child.ts): starts the child, hands it the compiled
 * rule, sends it calls and waits for each answer under a watchdog of its own. The sandbox inside
 * the child interrupts a rule that overruns between bytecodes; the watchdog is for what that
 * cannot interrupt (one long native call): when a call has not answered by the rule's own
 * deadline plus a grace, the child is killed, the call is reported as a timeout and the rule is
 * started afresh in a new child on its next call. The host's event loop is never held meanwhile.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { RuleError } from "../../errors.ts";
import type { CompiledRule } from "../compile-rule.ts";
import type { CallFailure, DispatchResult, RuleInfo, SandboxLimits } from "../sandbox.ts";
import {
  decodeReply, encodeRequest, FrameReader, ProtocolError, ReplyKind, RequestKind,
  type LoadRequest, type ReadReply, type Request,
} from "./protocol.ts";

import { RUNNER_ARGUMENT } from "./runner-argument.ts";

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
/** The child's last words kept for a report. */
const STDERR_KEEP = 2000;

/**
 * Whether this is the single executable rather than Bun running the sources. The module's own
 * address says so on Linux ($bunfs); on Windows it is not always spelt the same way, so the
 * program's name counts too: from the sources, the program is Bun itself.
 */
function compiledExecutable(): boolean {
  const here = decodeURIComponent(import.meta.url);
  if (here.includes("$bunfs") || here.includes("~BUN")) return true;
  return !/^bun(-debug)?(\.exe)?$/i.test(path.basename(process.execPath));
}

/** How to start a runner: the executable itself, or Bun with the runner's entry from the sources. */
export function runnerCommand(): string[] {
  if (compiledExecutable()) return [process.execPath, RUNNER_ARGUMENT];
  return [process.execPath, path.join(path.dirname(fileURLToPath(import.meta.url)), "child-main.ts")];
}

/**
 * Milliseconds a call may take, from its Begin, before its runner is ended: what the sandbox
 * allows the call's first run (the same sums as sandbox.ts: a batch shares one deadline; start
 * and periodic get ten events' budget), plus the sandbox's own short steps and the grace.
 */
export function callAllowanceMs(request: Request, limits: SandboxLimits): number {
  const budget = limits.callBudgetMs;
  switch (request.kind) {
    case RequestKind.Dispatch:
      return batchMs(request.count, budget) + 300 + GRACE_MS;
    case RequestKind.Start:
    case RequestKind.Periodic:
      return Math.max(budget * 10, 100) + 300 + GRACE_MS;
    case RequestKind.Load:
      return LOAD_TIMEOUT_MS;
  }
}

/** The deadline a batch's events share in the sandbox (sandbox.ts runDispatch). */
function batchMs(count: number, budget: number): number {
  return Math.min(budget * count, 10_000);
}

/**
 * After a Retry: the rest of the batch's shared time, or one event's budget when none is left
 * (as the sandbox sets it), plus the steps between runs and the grace.
 */
function retryAllowanceMs(request: Request, limits: SandboxLimits, elapsedMs: number): number {
  const count = request.kind === RequestKind.Dispatch ? request.count : 1;
  return Math.round(Math.max(batchMs(count, limits.callBudgetMs) - elapsedMs, limits.callBudgetMs)) + 300 + GRACE_MS;
}

/** `timedOut`: the wait, in ms, that ran out. */
type Outcome = { reply: ReadReply } | { timedOut: number } | { broken: string };

interface Child {
  process: ReturnType<typeof Bun.spawn>;
  pending: ((o: Outcome) => void) | null;
  /** What came while nobody waited (several frames can arrive in one read). */
  inbox: Outcome[];
  stderr: string;
  exited: boolean;
}

export class RuleRunner {
  private child: Child | null = null;
  private disposed = false;
  private busy: Promise<unknown> = Promise.resolve();
  private memory = 0;
  /** What the rule declared, as its first load told (a restart loads the same code). */
  info!: RuleInfo;

  private constructor(
    private readonly load: LoadRequest,
    readonly compiled: CompiledRule,
  ) {}

  /** Starts a runner and loads the rule into it; a rule that does not load throws a RuleError. */
  static async start(compiled: CompiledRule, options: unknown, limits: SandboxLimits): Promise<RuleRunner> {
    const load: LoadRequest = {
      file: compiled.file, code: compiled.code, mappings: compiled.lines.mappings, exportAt: compiled.exportAt ?? null,
      options: options ?? {}, limits,
    };
    const runner = new RuleRunner(load, compiled);
    try {
      runner.info = await runner.boot();
    } catch (err) {
      runner.dispose();
      throw err;
    }
    return runner;
  }

  /** Bytes of WebAssembly memory the rule held after its last call. */
  memoryBytes(): number {
    return this.memory;
  }

  /** The child's process id (for memory accounting); null when none runs. */
  get pid(): number | null {
    return this.child && !this.child.exited ? this.child.process.pid : null;
  }

  dispatch(payload: Uint8Array, count: number, maxFailures = Infinity): Promise<DispatchResult> {
    return this.call({ kind: RequestKind.Dispatch, count, maxFailures, payload });
  }

  hook(hook: "start" | "periodic", payload: Uint8Array, at: number): Promise<DispatchResult> {
    return this.call({ kind: hook === "start" ? RequestKind.Start : RequestKind.Periodic, at, payload });
  }

  private call(request: Request): Promise<DispatchResult> {
    const run = this.busy.then(() => this.callNow(request));
    this.busy = run.catch(() => {});
    return run;
  }

  private async callNow(request: Request): Promise<DispatchResult> {
    if (this.disposed) return { actions: [], failures: [] };
    if (!this.child || this.child.exited) {
      try {
        await this.boot();
      } catch (err) {
        const message = err instanceof RuleError ? err.detail : (err as Error).message;
        return { actions: [], failures: [failure(`its sandbox could not be started again: ${message}`, "error", true)] };
      }
    }
    const allowance = callAllowanceMs(request, this.load.limits);
    const outcome = await this.exchangeCall(request, allowance);
    if ("reply" in outcome && outcome.reply.kind === ReplyKind.Result) {
      this.memory = outcome.reply.result.memoryBytes;
      return { actions: outcome.reply.result.actions as DispatchResult["actions"], failures: outcome.reply.result.failures };
    }
    // Whatever went wrong, this child is done with: the next call starts a fresh one.
    const detail = "timedOut" in outcome
      ? `did not answer within ${outcome.timedOut} ms (its time budget plus a grace; one native call cannot be interrupted), so its sandbox was ended; it starts afresh, without the state it had`
      : `its sandbox ended unexpectedly (${"broken" in outcome ? outcome.broken : "unexpected reply"}); it starts afresh, without the state it had`;
    this.end();
    return { actions: [], failures: [failure(detail, "timedOut" in outcome ? "timeout" : "error", false)] };
  }

  /** Starts a child and loads the rule into it. */
  private async boot(): Promise<RuleInfo> {
    this.end();
    const child = this.spawn();
    const ready = await this.await(child, START_TIMEOUT_MS);
    if (!("reply" in ready) || ready.reply.kind !== ReplyKind.Ready) {
      this.end();
      throw new RuleError(this.load.file, null, null, `cannot start the sandbox: ${describe(ready, START_TIMEOUT_MS)}`);
    }
    const loaded = await this.exchange({ kind: RequestKind.Load, load: this.load }, LOAD_TIMEOUT_MS);
    if ("reply" in loaded && loaded.reply.kind === ReplyKind.Loaded) {
      this.memory = loaded.reply.loaded.memoryBytes;
      return loaded.reply.loaded.info;
    }
    this.end();
    if ("reply" in loaded && loaded.reply.kind === ReplyKind.LoadFailed) {
      const f = loaded.reply.failed;
      throw new RuleError(this.load.file, f.line, f.column, f.message);
    }
    throw new RuleError(this.load.file, 1, 1, "timedOut" in loaded ? "took longer than its time budget while loading" : `cannot load: ${describe(loaded, LOAD_TIMEOUT_MS)}`);
  }

  private spawn(): Child {
    const proc = Bun.spawn({
      cmd: runnerCommand(),
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
      // Nothing of the host's environment is needed, and none of it should reach the child.
      env: {},
    });
    const child: Child = { process: proc, pending: null, inbox: [], stderr: "", exited: false };
    this.child = child;
    const settle = (o: Outcome) => {
      const p = child.pending;
      child.pending = null;
      if (p) p(o);
      else child.inbox.push(o);
    };
    const reader = new FrameReader((kind, body) => {
      let reply: ReadReply;
      try {
        reply = decodeReply(kind, body);
      } catch (err) {
        settle({ broken: err instanceof ProtocolError ? err.message : String(err) });
        return;
      }
      settle({ reply });
    });
    void (async () => {
      try {
        for await (const chunk of proc.stdout as ReadableStream<Uint8Array>) reader.push(chunk);
      } catch (err) {
        settle({ broken: (err as Error).message });
        try {
          proc.kill(9);
        } catch {
          // already gone
        }
      }
    })();
    void (async () => {
      try {
        for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) {
          child.stderr = (child.stderr + new TextDecoder().decode(chunk)).slice(-STDERR_KEEP);
        }
      } catch {
        // stderr is for diagnostics only
      }
    })();
    void proc.exited.then((code) => {
      child.exited = true;
      const last = child.stderr.trim().split("\n").pop() ?? "";
      settle({ broken: `exit ${code}${last ? `: ${last.slice(0, 300)}` : ""}` });
    });
    return child;
  }

  /** Sends a request and waits for its reply, at most `ms`. */
  private async exchange(request: Request, ms: number): Promise<Outcome> {
    const child = this.child;
    if (!child || child.exited) return { broken: "not running" };
    const answer = this.await(child, ms);
    try {
      const sink = child.process.stdin as import("bun").FileSink;
      for (const piece of joined(encodeRequest(request))) sink.write(piece);
      await sink.flush();
    } catch (err) {
      const p = child.pending;
      child.pending = null;
      p?.({ broken: `cannot write to it: ${(err as Error).message}` });
    }
    return answer;
  }

  /**
   * A call in three steps: the runner takes the payload (Begin), the rule runs (until End, under
   * the watchdog), the runner sends the result. Only the middle step is the rule's time.
   */
  private async exchangeCall(request: Request, allowance: number): Promise<Outcome> {
    const begun = await this.exchange(request, RUNNER_WORK_MS);
    if (!("reply" in begun) || begun.reply.kind !== ReplyKind.Begin) return "reply" in begun ? { broken: "out of step" } : begun;
    const child = this.child;
    if (!child) return { broken: "ended" };
    const beganAt = performance.now();
    let wait = allowance;
    // Each run of the handler after a failing event is timed afresh, as the sandbox times it: a
    // call stuck in its first run is ended after its first run's time, not after every retry's.
    for (let step = 0; ; step++) {
      const next = await this.await(child, wait);
      if (!("reply" in next)) return next;
      if (next.reply.kind === ReplyKind.End) break;
      if (next.reply.kind !== ReplyKind.Retry || step > MAX_RETRY_FRAMES) return { broken: "out of step" };
      wait = retryAllowanceMs(request, this.load.limits, performance.now() - beganAt);
    }
    return this.await(child, RUNNER_WORK_MS);
  }

  private await(child: Child, ms: number): Promise<Outcome> {
    const waiting = child.inbox.shift();
    if (waiting) return Promise.resolve(waiting);
    return new Promise<Outcome>((resolve) => {
      // A monotonic timer: a wall clock set back must not stretch the watchdog.
      const timer = setTimeout(() => {
        if (child.pending === done) {
          child.pending = null;
          resolve({ timedOut: ms });
        }
      }, ms);
      const done = (o: Outcome) => {
        clearTimeout(timer);
        resolve(o);
      };
      child.pending = done;
    });
  }

  /** Ends the current child, if any, at once. */
  private end(): void {
    const child = this.child;
    this.child = null;
    if (!child) return;
    child.pending?.({ broken: "ended" });
    child.pending = null;
    if (!child.exited) {
      try {
        child.process.kill(9);
      } catch {
        // already gone
      }
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.end();
  }
}

function failure(message: string, kind: CallFailure["kind"], fatal: boolean): CallFailure {
  return { index: -1, message, line: null, column: null, kind, fatal };
}

function describe(o: Outcome, ms: number): string {
  if ("timedOut" in o) return `no answer within ${ms} ms`;
  if ("broken" in o) return o.broken;
  return "unexpected reply";
}

/** Above this a request goes out in its pieces: the payload alone is then many writes anyway. */
const JOIN_LIMIT = 64 * 1024;

/**
 * A small request's pieces in one buffer: each write to the pipe is a system call and may wake
 * the runner, which would then read a frame's five-byte header on its own. Copying a small
 * payload once costs less than the calls and wake-ups. (Joining large ones was measured to
 * lengthen the wait for the runner to take them in.)
 */
function joined(pieces: Uint8Array[]): Uint8Array[] {
  let size = 0;
  for (const p of pieces) size += p.byteLength;
  if (pieces.length === 1 || size > JOIN_LIMIT) return pieces;
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.byteLength;
  }
  return [out];
}
