/**
 * What crosses between the host and a rule runner (a child process of the same executable that
 * holds one rule's sandbox). One request at a time, one reply each, in order, over the child's
 * stdin and stdout. Every message is a frame:
 *
 *   u32 length of what follows (little-endian) | u8 kind | body
 *
 * Bodies are either JSON text (small, structured messages) or a fixed header followed by the
 * binary payload the sandbox decodes (guest-payload.ts), which is copied once and never parsed in
 * JavaScript on either side.
 *
 * The runner is the host's own code, but everything in a reply that came from the rule is only a
 * claim: the host checks it again (action-rows.ts) before acting on it.
 */
import type { SandboxLimits, RuleInfo, CallFailure } from "../sandbox.ts";

export const enum RequestKind {
  Load = 1,
  Dispatch = 2,
  Start = 3,
  Periodic = 4,
}

export const enum ReplyKind {
  /** The runner is up and can take a Load. */
  Ready = 1,
  Loaded = 2,
  LoadFailed = 3,
  Result = 4,
  /**
   * The call reached the rule (Begin) or came back from it (End). Only the time between the two
   * is the rule's; what comes before and after is the runner's own bounded work. End comes in
   * the same write as the Result that follows it.
   */
  Begin = 5,
  End = 6,
  /**
   * The handler starts again after a failing event (a batch goes on past it): its time is the
   * rest of the batch's, or one event's budget when none is left.
   */
  Retry = 7,
}

export interface LoadRequest {
  file: string;
  code: string;
  /** The compiled rule's source-map mappings, to map errors back to the user's lines. */
  mappings: string;
  exportAt: { line: number; column: number } | null;
  options: unknown;
  limits: SandboxLimits;
}

export interface LoadedReply {
  info: RuleInfo;
  memoryBytes: number;
}

export interface LoadFailedReply {
  line: number | null;
  column: number | null;
  message: string;
}

/**
 * A call's outcome as the runner sends it: the guest's own JSON texts of action rows, passed on
 * without being parsed and written again (the largest part of a reply, and a copy less).
 */
export interface ResultReply {
  actionTexts: string[];
  failures: CallFailure[];
  /** The rule's WebAssembly memory after the call. */
  memoryBytes: number;
}

/** A call's outcome as the host reads it: the rows, still to be checked (action-rows.ts). */
export interface ResultRead {
  actions: unknown[];
  failures: CallFailure[];
  memoryBytes: number;
}

export type Request =
  | { kind: RequestKind.Load; load: LoadRequest }
  | { kind: RequestKind.Dispatch; count: number; maxFailures: number; payload: Uint8Array }
  | { kind: RequestKind.Start | RequestKind.Periodic; at: number; payload: Uint8Array };

export type Reply =
  | { kind: ReplyKind.Ready | ReplyKind.Begin | ReplyKind.End | ReplyKind.Retry }
  | { kind: ReplyKind.Loaded; loaded: LoadedReply }
  | { kind: ReplyKind.LoadFailed; failed: LoadFailedReply }
  | { kind: ReplyKind.Result; result: ResultReply };

/** A reply as the host reads it. */
export type ReadReply = Exclude<Reply, { kind: ReplyKind.Result }> | { kind: ReplyKind.Result; result: ResultRead };

/** Replies as one buffer, to go out in one write (each write wakes the reader). */
export function encodeReplies(replies: readonly Reply[]): Uint8Array {
  const pieces = replies.flatMap((r) => encodeReply(r));
  const out = new Uint8Array(pieces.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

const HEADER = 5;
/** "No limit" for maxFailures on the wire. */
const UNLIMITED = 0xffffffff;
/**
 * The largest frame either side accepts. A payload of events is far smaller; a reply is bounded
 * by the rule's WebAssembly memory (what it returns must fit there first) plus JSON's escaping.
 */
export const MAX_FRAME_BYTES = 256 << 20;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: false });

function frame(kind: number, body: Uint8Array, extra?: Uint8Array): Uint8Array[] {
  const head = new Uint8Array(HEADER);
  const view = new DataView(head.buffer);
  view.setUint32(0, 1 + body.byteLength + (extra?.byteLength ?? 0), true);
  head[4] = kind;
  return extra ? [head, body, extra] : [head, body];
}

/** A request as the pieces to write (the payload is not copied into a new buffer). */
export function encodeRequest(r: Request): Uint8Array[] {
  switch (r.kind) {
    case RequestKind.Load:
      return frame(r.kind, utf8.encode(JSON.stringify(r.load)));
    case RequestKind.Dispatch: {
      const head = new Uint8Array(8);
      const view = new DataView(head.buffer);
      view.setUint32(0, r.count, true);
      view.setUint32(4, Number.isFinite(r.maxFailures) ? Math.max(0, Math.min(r.maxFailures, UNLIMITED - 1)) : UNLIMITED, true);
      return frame(r.kind, head, r.payload);
    }
    case RequestKind.Start:
    case RequestKind.Periodic: {
      const head = new Uint8Array(8);
      new DataView(head.buffer).setFloat64(0, r.at, true);
      return frame(r.kind, head, r.payload);
    }
  }
}

export function encodeReply(r: Reply): Uint8Array[] {
  switch (r.kind) {
    case ReplyKind.Ready:
    case ReplyKind.Begin:
    case ReplyKind.End:
    case ReplyKind.Retry:
      return frame(r.kind, new Uint8Array(0));
    case ReplyKind.Loaded:
      return frame(r.kind, utf8.encode(JSON.stringify(r.loaded)));
    case ReplyKind.LoadFailed:
      return frame(r.kind, utf8.encode(JSON.stringify(r.failed)));
    case ReplyKind.Result: {
      // u32 header length, header JSON, u32 count, then each text as u32 length and UTF-8.
      const header = utf8.encode(JSON.stringify({ failures: r.result.failures, memoryBytes: r.result.memoryBytes }));
      const texts = r.result.actionTexts.map((t) => utf8.encode(t));
      const body = new Uint8Array(8 + header.byteLength + texts.reduce((n, t) => n + 4 + t.byteLength, 0));
      const view = new DataView(body.buffer);
      view.setUint32(0, header.byteLength, true);
      body.set(header, 4);
      let at = 4 + header.byteLength;
      view.setUint32(at, texts.length, true);
      at += 4;
      for (const t of texts) {
        view.setUint32(at, t.byteLength, true);
        body.set(t, at + 4);
        at += 4 + t.byteLength;
      }
      return frame(r.kind, body);
    }
  }
}

export class ProtocolError extends Error {}

export function decodeRequest(kind: number, body: Uint8Array): Request {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  switch (kind) {
    case RequestKind.Load:
      return { kind, load: parseJson(body) as LoadRequest };
    case RequestKind.Dispatch: {
      if (body.byteLength < 8) throw new ProtocolError("short dispatch request");
      const max = view.getUint32(4, true);
      return { kind, count: view.getUint32(0, true), maxFailures: max === UNLIMITED ? Infinity : max, payload: body.subarray(8) };
    }
    case RequestKind.Start:
    case RequestKind.Periodic:
      if (body.byteLength < 8) throw new ProtocolError("short call request");
      return { kind, at: view.getFloat64(0, true), payload: body.subarray(8) };
    default:
      throw new ProtocolError(`unknown request kind ${kind}`);
  }
}

/**
 * Reads a reply and checks its shape: anything that is not what the protocol says is a
 * ProtocolError, which the host treats as a broken runner.
 */
export function decodeReply(kind: number, body: Uint8Array): ReadReply {
  switch (kind) {
    case ReplyKind.Ready:
    case ReplyKind.Begin:
    case ReplyKind.End:
    case ReplyKind.Retry:
      return { kind };
    case ReplyKind.Loaded: {
      const v = parseJson(body) as Partial<LoadedReply>;
      if (!isObject(v) || !isObject(v.info) || typeof v.memoryBytes !== "number") throw new ProtocolError("malformed load reply");
      return { kind, loaded: v as LoadedReply };
    }
    case ReplyKind.LoadFailed: {
      const v = parseJson(body) as Partial<LoadFailedReply>;
      if (!isObject(v) || typeof v.message !== "string" || !isPosition(v.line) || !isPosition(v.column)) throw new ProtocolError("malformed load failure");
      return { kind, failed: v as LoadFailedReply };
    }
    case ReplyKind.Result: {
      const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
      const need = (at: number, n: number) => {
        if (at + n > body.byteLength) throw new ProtocolError("short result");
      };
      need(0, 4);
      const headerLength = view.getUint32(0, true);
      need(4, headerLength + 4);
      const v = parseJson(body.subarray(4, 4 + headerLength)) as Partial<ResultReply>;
      if (!isObject(v) || !Array.isArray(v.failures) || typeof v.memoryBytes !== "number") throw new ProtocolError("malformed result");
      let at = 4 + headerLength;
      const count = view.getUint32(at, true);
      at += 4;
      const actions: unknown[] = [];
      for (let i = 0; i < count; i++) {
        need(at, 4);
        const n = view.getUint32(at, true);
        need(at + 4, n);
        actions.push(...rowsOf(body.subarray(at + 4, at + 4 + n)));
        at += 4 + n;
      }
      if (at !== body.byteLength) throw new ProtocolError("trailing bytes after a result");
      return { kind, result: { actions, failures: v.failures.map(checkFailure), memoryBytes: v.memoryBytes } };
    }
    default:
      throw new ProtocolError(`unknown reply kind ${kind}`);
  }
}

const FAILURE_KINDS = new Set(["error", "timeout", "memory"]);

function checkFailure(f: unknown): CallFailure {
  const x = f as Partial<CallFailure>;
  if (!isObject(x) || typeof x.index !== "number" || typeof x.message !== "string" || !FAILURE_KINDS.has(x.kind as string) || !isPosition(x.line) || !isPosition(x.column)) {
    throw new ProtocolError("malformed failure");
  }
  return { index: x.index, message: x.message.slice(0, 1000), line: x.line, column: x.column, kind: x.kind as CallFailure["kind"], fatal: x.fatal === true };
}

/**
 * The rows in one of the guest's texts. The guest wrote it, so it may be anything: what is not a
 * list of rows comes out as one row that the host's check refuses, never as an error here.
 */
function rowsOf(text: Uint8Array): unknown[] {
  let value: unknown;
  try {
    value = JSON.parse(fromUtf8.decode(text));
  } catch {
    return ["(the rule's actions were not JSON)"];
  }
  return Array.isArray(value) ? value : [value];
}

function parseJson(body: Uint8Array): unknown {
  try {
    return JSON.parse(fromUtf8.decode(body));
  } catch {
    throw new ProtocolError("a message is not valid JSON");
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isPosition(v: unknown): v is number | null {
  return v === null || (typeof v === "number" && Number.isInteger(v) && v >= 0);
}

/**
 * Splits a byte stream into frames. Bytes arrive in chunks of any size; a frame is handed out
 * once it is whole.
 */
export class FrameReader {
  private chunks: Uint8Array[] = [];
  private buffered = 0;

  constructor(private readonly onFrame: (kind: number, body: Uint8Array) => void) {}

  push(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.buffered += chunk.byteLength;
    while (this.buffered >= HEADER) {
      const head = this.peek(HEADER);
      const length = new DataView(head.buffer, head.byteOffset, HEADER).getUint32(0, true);
      if (length < 1 || length > MAX_FRAME_BYTES) throw new ProtocolError(`a frame of ${length} bytes is out of bounds`);
      if (this.buffered < 4 + length) return;
      const whole = this.take(4 + length);
      this.onFrame(whole[4]!, whole.subarray(HEADER));
    }
  }

  private peek(n: number): Uint8Array {
    if (this.chunks[0]!.byteLength >= n) return this.chunks[0]!;
    return this.join(n, false);
  }

  private take(n: number): Uint8Array {
    return this.join(n, true);
  }

  private join(n: number, consume: boolean): Uint8Array {
    const first = this.chunks[0]!;
    if (consume && first.byteLength === n) {
      this.chunks.shift();
      this.buffered -= n;
      return first;
    }
    if (consume && first.byteLength > n) {
      this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return first.subarray(0, n);
    }
    const out = new Uint8Array(n);
    let filled = 0;
    let i = 0;
    while (filled < n) {
      const c = this.chunks[i]!;
      const part = Math.min(c.byteLength, n - filled);
      out.set(c.subarray(0, part), filled);
      filled += part;
      if (consume) {
        if (part === c.byteLength) {
          this.chunks.shift();
          continue;
        }
        this.chunks[0] = c.subarray(part);
      }
      i++;
    }
    if (consume) this.buffered -= n;
    return out;
  }
}
