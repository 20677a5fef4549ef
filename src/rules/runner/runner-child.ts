/**
 * The rule runner: the child process that holds one rule's sandbox. It reads requests on stdin
 * and answers each on stdout (protocol.ts), one at a time. It exists so that the host can always
 * take control back: QuickJS's interrupt runs between bytecodes only, and one native built-in
 * (a quadratic indexOf, split or sort over a large string) can hold the thread that runs it for
 * hours. In a child, that thread is not the daemon's, and the host ends the child when its
 * deadline passes (rule-runner.ts).
 *
 * It ends when stdin closes (the host went away or dropped it).
 */
import { writeSync } from "node:fs";
import { RuleError } from "../../errors.ts";
import { endWithParent } from "../../engine/index.ts";
import { RuleSandbox } from "../sandbox.ts";
import { LineMap } from "../source-map.ts";
import { decodeRequest, encodeReplies, FrameReader, ReplyKind, RequestKind, type Reply, type Request } from "./protocol.ts";

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
  let sandbox: RuleSandbox | null = null;
  /** Runs a call; returns its End and Result, to be sent together. */
  const handle = (request: Request): Reply[] => {
    if (request.kind === RequestKind.Load) throw new Error("load is handled before any call");
    send({ kind: ReplyKind.Begin });
    const r = request.kind === RequestKind.Dispatch
      ? sandbox!.dispatchRaw(request.payload, request.count, request.maxFailures, () => send({ kind: ReplyKind.Retry }))
      : sandbox!.callRaw(request.kind === RequestKind.Start ? "start" : "periodic", request.payload, request.at);
    return [{ kind: ReplyKind.End }, { kind: ReplyKind.Result, result: { actionTexts: r.actionTexts, failures: r.failures, memoryBytes: sandbox!.memoryBytes() } }];
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
          sandbox?.dispose();
          sandbox = await RuleSandbox.create({ file: l.file, code: l.code, lines: new LineMap(l.mappings), exportAt: l.exportAt }, l.options, l.limits);
          send({ kind: ReplyKind.Loaded, loaded: { info: sandbox.info, memoryBytes: sandbox.memoryBytes() } });
        } catch (err) {
          const e = err instanceof RuleError ? err : new RuleError(request.load.file, null, null, (err as Error)?.message ?? String(err));
          send({ kind: ReplyKind.LoadFailed, failed: { line: e.line, column: e.column, message: e.detail } });
        }
        return;
      }
      if (!sandbox) throw new Error("a call came before the rule was loaded");
      send(...handle(request));
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
