/**
 * The rule runner: the child process that holds the sandboxes of one or more rules, each in a
 * slot of its own (its own QuickJS module, memory and limits). It reads requests on stdin and
 * answers on stdout (protocol.ts), one request at a time, the calls of a request one rule at a
 * time. It exists so that the host can always take control back: QuickJS's interrupt runs
 * between bytecodes only, and one native built-in (a quadratic indexOf, split or sort over a
 * large string) can hold the thread that runs it for hours. In a child, that thread is not the
 * daemon's, and the host ends the child when a rule's deadline passes (rule-runner.ts).
 *
 * It ends when stdin closes (the host went away or dropped it).
 */
import { writeSync } from "node:fs";
import { RuleError } from "../../errors.ts";
import { endWithParent } from "../../engine/index.ts";
import { RuleSandbox, type RawResult } from "../sandbox.ts";
import { LineMap } from "../source-map.ts";
import { decodeRequest, encodeReplies, FrameReader, ReplyKind, RequestKind, type CallRequest, type Reply } from "./protocol.ts";

export async function serveRuleRunner(): Promise<void> {
  // A runner that outlived the daemon (killed with SIGKILL while a rule sat in a native call)
  // would go on using a CPU for as long as that call runs.
  if (!endWithParent(process.ppid)) process.exit(0);
  // Written synchronously: a Begin must be out before the rule's call holds this thread. What is
  // sent together goes out in one write: each write wakes the host.
  const send = (...replies: Reply[]): void => {
    const bytes = encodeReplies(replies);
    for (let off = 0; off < bytes.byteLength; ) {
      try {
        off += writeSync(1, bytes, off, bytes.byteLength - off);
      } catch (err) {
        // A non-blocking pipe that is full: wait for the host to read.
        if ((err as NodeJS.ErrnoException).code !== "EAGAIN") throw err;
        Bun.sleepSync(1);
      }
    }
  };
  const sandboxes = new Map<number, RuleSandbox>();
  /**
   * Runs each call of a request in turn. The End and Result of one call go out with the next
   * call's Begin in one write (each write wakes the host); the last call's are returned, to be
   * sent together.
   */
  const handle = (request: CallRequest): Reply[] => {
    let pending: Reply[] = [];
    for (const call of request.calls) {
      const slot = call.slot;
      send(...pending, { kind: ReplyKind.Begin, slot });
      const sandbox = sandboxes.get(slot);
      const payload = request.payloads[call.payload]!;
      const r: RawResult = !sandbox
        ? { actionTexts: [], failures: [{ index: -1, message: "its sandbox is not loaded in this runner", line: null, column: null, kind: "error", fatal: true }] }
        : request.kind === RequestKind.Dispatch
          ? sandbox.dispatchRaw(payload, call.count, call.maxFailures, () => send({ kind: ReplyKind.Retry, slot }))
          : sandbox.callRaw(request.kind === RequestKind.Start ? "start" : "periodic", payload, request.at);
      pending = [{ kind: ReplyKind.End, slot }, { kind: ReplyKind.Result, slot, result: { actionTexts: r.actionTexts, failures: r.failures, memoryBytes: sandbox?.memoryBytes() ?? 0 } }];
    }
    return pending;
  };
  // Requests come one at a time, but a load is asynchronous: later frames wait for it.
  let queue: Promise<void> = Promise.resolve();
  const reader = new FrameReader((kind, body) => {
    // The body may be a view into a chunk that is reused: copy what outlives this call.
    const request = decodeRequest(kind, body.slice());
    queue = queue.then(async () => {
      if (request.kind === RequestKind.Load) {
        try {
          const l = request.load;
          sandboxes.get(request.slot)?.dispose();
          sandboxes.delete(request.slot);
          const sandbox = await RuleSandbox.create({ file: l.file, code: l.code, lines: new LineMap(l.mappings), exportAt: l.exportAt }, l.options, l.limits);
          sandboxes.set(request.slot, sandbox);
          send({ kind: ReplyKind.Loaded, loaded: { info: sandbox.info, memoryBytes: sandbox.memoryBytes() } });
        } catch (err) {
          const e = err instanceof RuleError ? err : new RuleError(request.load.file, null, null, (err as Error)?.message ?? String(err));
          send({ kind: ReplyKind.LoadFailed, failed: { line: e.line, column: e.column, message: e.detail } });
        }
        return;
      }
      if (request.kind === RequestKind.Unload) {
        sandboxes.get(request.slot)?.dispose();
        sandboxes.delete(request.slot);
        return;
      }
      const last = handle(request);
      if (last.length > 0) send(...last);
    }).catch((err: unknown) => {
      // The runner's own fault, not the rule's: the host sees the exit and treats it as broken.
      process.stderr.write(`rule runner failed: ${(err as Error)?.message ?? String(err)}\n`);
      process.exit(70);
    });
  });
  send({ kind: ReplyKind.Ready });
  for await (const chunk of Bun.stdin.stream()) reader.push(chunk as Uint8Array);
  await queue;
  process.exit(0);
}
