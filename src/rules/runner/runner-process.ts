/**
 * One rule runner child process as the host sees it: started from the same executable, spoken to
 * in frames (protocol.ts), waited on with a time limit, and killed at once when the host gives up
 * on it. Which rule a wait is for, and what a late answer means, is rule-runner.ts's business.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { decodeReply, encodeRequest, FrameReader, ProtocolError, type ReadReply, type Request } from "./protocol.ts";
import { RUNNER_ARGUMENT } from "./runner-argument.ts";

/** The child's last words kept for a report. */
const STDERR_KEEP = 2000;
/** A timer this late (ms) was held up by the host itself; checked again this long after. */
const LATE_MS = 20;
/** Turns of the loop a late verdict waits for, at most. */
const MAX_RECHECKS = 3;
/** Above this a request goes out in its pieces: the payload alone is then many writes anyway. */
const JOIN_LIMIT = 64 * 1024;

/** `timedOut`: the wait, in ms, that ran out. */
export type Outcome = { reply: ReadReply } | { timedOut: number } | { broken: string };

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

export class RunnerProcess {
  private pending: ((o: Outcome) => void) | null = null;
  /** What came while nobody waited (several frames can arrive in one read). */
  private readonly inbox: Outcome[] = [];
  private stderr = "";
  private exited = false;
  private readonly process: ReturnType<typeof Bun.spawn>;

  constructor() {
    const proc = Bun.spawn({
      cmd: runnerCommand(),
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
      // Nothing of the host's environment is needed, and none of it should reach the child.
      env: {},
    });
    this.process = proc;
    const reader = new FrameReader((kind, body) => {
      let reply: ReadReply;
      try {
        reply = decodeReply(kind, body);
      } catch (err) {
        this.settle({ broken: err instanceof ProtocolError ? err.message : String(err) });
        return;
      }
      this.settle({ reply });
    });
    void (async () => {
      try {
        for await (const chunk of proc.stdout as ReadableStream<Uint8Array>) reader.push(chunk);
      } catch (err) {
        this.settle({ broken: (err as Error).message });
        this.kill();
      }
    })();
    void (async () => {
      try {
        for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) {
          this.stderr = (this.stderr + new TextDecoder().decode(chunk)).slice(-STDERR_KEEP);
        }
      } catch {
        // stderr is for diagnostics only
      }
    })();
    void proc.exited.then((code) => {
      this.exited = true;
      const last = this.stderr.trim().split("\n").pop() ?? "";
      this.settle({ broken: `exit ${code}${last ? `: ${last.slice(0, 300)}` : ""}` });
    });
  }

  get pid(): number | null {
    return this.exited ? null : this.process.pid;
  }

  get alive(): boolean {
    return !this.exited;
  }

  private settle(o: Outcome): void {
    const p = this.pending;
    this.pending = null;
    if (p) p(o);
    else this.inbox.push(o);
  }

  /**
   * Writes a request; a failed write is what the next wait gets. The flush is not waited for:
   * the runner's answer is what the caller waits for, and waiting for the flush first cost 0.2 ms
   * a call at the median and 1.4 ms at the 90th percentile (of a 1.4 ms round trip).
   */
  async send(request: Request): Promise<void> {
    const broken = (err: unknown) => this.settle({ broken: `cannot write to it: ${(err as Error)?.message ?? String(err)}` });
    try {
      const sink = this.process.stdin as import("bun").FileSink;
      for (const piece of joined(encodeRequest(request))) sink.write(piece);
      const flushed = sink.flush();
      if (flushed instanceof Promise) flushed.catch(broken);
    } catch (err) {
      broken(err);
    }
  }

  /** Sends a request and waits for its reply, at most `ms`. */
  async exchange(request: Request, ms: number): Promise<Outcome> {
    if (this.exited) return { broken: "not running" };
    const answer = this.await(ms);
    await this.send(request);
    return answer;
  }

  /** The next reply, or what went wrong, within `ms`. */
  await(ms: number): Promise<Outcome> {
    const waiting = this.inbox.shift();
    if (waiting) return Promise.resolve(waiting);
    return new Promise<Outcome>((resolve) => {
      // A monotonic timer: a wall clock set back must not stretch the watchdog.
      let due = performance.now() + ms;
      let rechecks = 0;
      const expire = () => {
        if (this.pending !== done) return;
        // A timer that fired late means the host's own loop was held (a large snapshot): what
        // the runner wrote meanwhile is still unread, so it gets a turn of the loop before the
        // verdict. A runner that really overran is ended a few milliseconds later.
        if (performance.now() - due > LATE_MS && rechecks++ < MAX_RECHECKS) {
          due = performance.now() + LATE_MS;
          timer = setTimeout(expire, LATE_MS);
          return;
        }
        this.pending = null;
        resolve({ timedOut: ms });
      };
      let timer = setTimeout(expire, ms);
      const done = (o: Outcome) => {
        clearTimeout(timer);
        resolve(o);
      };
      this.pending = done;
    });
  }

  /** Ends the child at once; whoever waits is told. */
  kill(): void {
    const p = this.pending;
    this.pending = null;
    p?.({ broken: "ended" });
    if (this.exited) return;
    try {
      this.process.kill(9);
    } catch {
      // already gone
    }
  }
}

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
