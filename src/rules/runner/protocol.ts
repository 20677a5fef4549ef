/**
 * What crosses between the host and a rule runner (a child process of the same executable that
 * holds the sandboxes of one or more rules, each in a numbered slot). One request at a time, in
 * order, over the child's stdin and stdout; every message is a frame (frame-reader.ts).
 *
 * A call request carries each distinct payload once and the list of calls that use it: the
 * runner runs them one after another and answers for each, naming its slot, so that one batch of
 * events is one write however many rules a runner holds.
 *
 * Bodies are either JSON text (small, structured messages) or a fixed header followed by the
 * binary payloads the sandbox decodes (guest-payload.ts), which are copied once and never parsed
 * in JavaScript on either side.
 *
 * The runner is the host's own code, but everything in a reply that came from the rule is only a
 * claim: the host checks it again (action-rows.ts) before acting on it.
 */
import type { SandboxLimits, RuleInfo, CallFailure } from "../sandbox.ts";
import { HEADER, ProtocolError } from "./frame-reader.ts";

export { FrameReader, MAX_FRAME_BYTES, ProtocolError } from "./frame-reader.ts";

export const enum RequestKind {
  Load = 1,
  Dispatch = 2,
  Start = 3,
  Periodic = 4,
  /** Drops a slot's sandbox (a rule reloaded or quarantined); no reply. */
  Unload = 5,
}

export const enum ReplyKind {
  /** The runner is up and can take a Load. */
  Ready = 1,
  Loaded = 2,
  LoadFailed = 3,
  Result = 4,
  /**
   * The call reached the rule in a slot (Begin) or came back from it (End). Only the time
   * between the two is the rule's; what comes before and after is the runner's own bounded work.
   * End comes in the same write as the Result that follows it, and the next call's Begin with
   * them.
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

/** One rule's call within a call request. */
export interface SlotCall {
  slot: number;
  /** Which of the request's payloads it takes. */
  payload: number;
  /** Events in that payload (1 for start and periodic). */
  count: number;
  /** Failures after which the rule's handler is not run again in this call. */
  maxFailures: number;
}

export type CallKind = RequestKind.Dispatch | RequestKind.Start | RequestKind.Periodic;

export interface CallRequest {
  kind: CallKind;
  /** Start and periodic: the time the rules are told. */
  at: number;
  payloads: Uint8Array[];
  calls: SlotCall[];
}

export type Request =
  | { kind: RequestKind.Load; slot: number; load: LoadRequest }
  | { kind: RequestKind.Unload; slot: number }
  | CallRequest;

export type Reply =
  | { kind: ReplyKind.Ready }
  | { kind: ReplyKind.Begin | ReplyKind.End | ReplyKind.Retry; slot: number }
  | { kind: ReplyKind.Loaded; loaded: LoadedReply }
  | { kind: ReplyKind.LoadFailed; failed: LoadFailedReply }
  | { kind: ReplyKind.Result; slot: number; result: ResultReply };

/** A reply as the host reads it. */
export type ReadReply = Exclude<Reply, { kind: ReplyKind.Result }> | { kind: ReplyKind.Result; slot: number; result: ResultRead };

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

/** "No limit" for maxFailures on the wire. */
const UNLIMITED = 0xffffffff;
/** Calls and payloads one request may carry (far more than rules anyone loads). */
const MAX_CALLS = 1 << 16;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: false });

function frame(kind: number, body: Uint8Array, extra?: Uint8Array): Uint8Array[] {
  const head = new Uint8Array(HEADER);
  const view = new DataView(head.buffer);
  view.setUint32(0, 1 + body.byteLength + (extra?.byteLength ?? 0), true);
  head[4] = kind;
  return extra ? [head, body, extra] : [head, body];
}

/** A request as the pieces to write (the payloads are not copied into a new buffer). */
export function encodeRequest(r: Request): Uint8Array[] {
  switch (r.kind) {
    case RequestKind.Load:
      return frame(r.kind, utf8.encode(JSON.stringify({ slot: r.slot, load: r.load })));
    case RequestKind.Unload:
      return frame(r.kind, slotBody(r.slot));
    default: {
      // f64 at | u32 payloads | u32 calls | calls (slot, payload, count, maxFailures) | payload lengths | payloads
      const head = new Uint8Array(16 + r.calls.length * 16 + r.payloads.length * 4);
      const view = new DataView(head.buffer);
      view.setFloat64(0, r.at, true);
      view.setUint32(8, r.payloads.length, true);
      view.setUint32(12, r.calls.length, true);
      let at = 16;
      for (const c of r.calls) {
        view.setUint32(at, c.slot, true);
        view.setUint32(at + 4, c.payload, true);
        view.setUint32(at + 8, c.count, true);
        view.setUint32(at + 12, Number.isFinite(c.maxFailures) ? Math.max(0, Math.min(c.maxFailures, UNLIMITED - 1)) : UNLIMITED, true);
        at += 16;
      }
      for (const p of r.payloads) {
        view.setUint32(at, p.byteLength, true);
        at += 4;
      }
      const pieces = frame(r.kind, head);
      const size = r.payloads.reduce((n, p) => n + p.byteLength, 0);
      new DataView(pieces[0]!.buffer).setUint32(0, 1 + head.byteLength + size, true);
      return [...pieces, ...r.payloads];
    }
  }
}

function slotBody(slot: number): Uint8Array {
  const body = new Uint8Array(4);
  new DataView(body.buffer).setUint32(0, slot, true);
  return body;
}

function readSlot(body: Uint8Array): number {
  if (body.byteLength !== 4) throw new ProtocolError("a slot is four bytes");
  return new DataView(body.buffer, body.byteOffset, 4).getUint32(0, true);
}

export function encodeReply(r: Reply): Uint8Array[] {
  switch (r.kind) {
    case ReplyKind.Ready:
      return frame(r.kind, new Uint8Array(0));
    case ReplyKind.Begin:
    case ReplyKind.End:
    case ReplyKind.Retry:
      return frame(r.kind, slotBody(r.slot));
    case ReplyKind.Loaded:
      return frame(r.kind, utf8.encode(JSON.stringify(r.loaded)));
    case ReplyKind.LoadFailed:
      return frame(r.kind, utf8.encode(JSON.stringify(r.failed)));
    case ReplyKind.Result: {
      // u32 header length, header JSON, u32 count, then each text as u32 length and UTF-8.
      const header = utf8.encode(JSON.stringify({ slot: r.slot, failures: r.result.failures, memoryBytes: r.result.memoryBytes }));
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

export function decodeRequest(kind: number, body: Uint8Array): Request {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  switch (kind) {
    case RequestKind.Load: {
      const v = parseJson(body) as { slot?: unknown; load?: LoadRequest };
      if (!isObject(v) || !isSlot(v.slot) || !isObject(v.load)) throw new ProtocolError("malformed load request");
      return { kind, slot: v.slot, load: v.load };
    }
    case RequestKind.Unload:
      return { kind, slot: readSlot(body) };
    case RequestKind.Dispatch:
    case RequestKind.Start:
    case RequestKind.Periodic: {
      if (body.byteLength < 16) throw new ProtocolError("short call request");
      const payloadCount = view.getUint32(8, true);
      const callCount = view.getUint32(12, true);
      if (payloadCount > MAX_CALLS || callCount > MAX_CALLS) throw new ProtocolError("too many calls in one request");
      let at = 16;
      if (body.byteLength < at + callCount * 16 + payloadCount * 4) throw new ProtocolError("short call request");
      const calls: SlotCall[] = [];
      for (let i = 0; i < callCount; i++, at += 16) {
        const max = view.getUint32(at + 12, true);
        const call = { slot: view.getUint32(at, true), payload: view.getUint32(at + 4, true), count: view.getUint32(at + 8, true), maxFailures: max === UNLIMITED ? Infinity : max };
        if (call.payload >= payloadCount) throw new ProtocolError("a call names a payload that is not there");
        calls.push(call);
      }
      const lengths: number[] = [];
      for (let i = 0; i < payloadCount; i++, at += 4) lengths.push(view.getUint32(at, true));
      const payloads: Uint8Array[] = [];
      for (const n of lengths) {
        if (at + n > body.byteLength) throw new ProtocolError("short call request");
        payloads.push(body.subarray(at, at + n));
        at += n;
      }
      if (at !== body.byteLength) throw new ProtocolError("trailing bytes after a call request");
      return { kind, at: view.getFloat64(0, true), payloads, calls };
    }
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
      return { kind };
    case ReplyKind.Begin:
    case ReplyKind.End:
    case ReplyKind.Retry:
      return { kind, slot: readSlot(body) };
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
      const v = parseJson(body.subarray(4, 4 + headerLength)) as Partial<ResultReply> & { slot?: unknown };
      if (!isObject(v) || !isSlot(v.slot) || !Array.isArray(v.failures) || typeof v.memoryBytes !== "number") throw new ProtocolError("malformed result");
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
      return { kind, slot: v.slot, result: { actions, failures: v.failures.map(checkFailure), memoryBytes: v.memoryBytes } };
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

function isSlot(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

function isPosition(v: unknown): v is number | null {
  return v === null || (typeof v === "number" && Number.isInteger(v) && v >= 0);
}

