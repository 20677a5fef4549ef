/**
 * Host-side encoding of events and endpoints for the rule sandbox, in the binary object format
 * that QuickJS reads natively (JS_ReadObject, exposed as decodeBinaryJSON). The guest receives
 * finished objects built by C code: it neither parses text nor runs a line of JavaScript per
 * field. Interpreted guest code costs tens of nanoseconds per operation in this build, so copying
 * fields into objects in the guest cost more than decoding them in C; parsing JSON text cost more
 * still.
 *
 * Each payload carries its processes once ({e: items, p: processes}); an endpoint's `process`
 * holds an index into p (or -1) that the guest's dispatcher turns into the shared object.
 *
 * An endpoint and a process carry every field of `list --json` (endpoint-json.ts), in its order,
 * so that what a rule sees is what a script sees, and JSON.stringify of either is the same text.
 *
 * The format belongs to the QuickJS build that is bundled; the sandbox checks at start that this
 * writer and that reader agree (see encodeProbe), so an upgrade that changes it fails loudly at load.
 */
import type { ContainerInfo, ProcessInfo } from "../model/process.ts";
import type { Endpoint, NamespaceTag } from "../model/endpoint.ts";
import type { CounterDelta, EndpointEvent } from "../monitor/events.ts";

/** First byte of every payload: the format version the bundled QuickJS reads. */
const FORMAT_VERSION = 5;

const enum Tag {
  Null = 1,
  False = 3,
  True = 4,
  Int32 = 5,
  Float64 = 6,
  String = 7,
  Object = 8,
  Array = 9,
}

/**
 * Property names travel once per payload, in a table at its start; fields name them by position
 * in it. The table goes with every payload, so the order is free.
 */
const KEYS = [
  "p", "e",
  "type", "seq", "time", "endpoint", "previousState", "counters", "shortLived",
  "protocol", "family", "localAddress", "localPort", "remoteAddress", "remotePort", "state", "inode", "uid", "user",
  "bytesSent", "bytesReceived", "packetsSent", "packetsReceived", "process", "pids", "cookie",
  "interfaceIndex", "receiveQueue", "sendQueue", "rttMs", "namespace", "openedAt", "createdAt", "module",
  "pid", "name", "path", "cmdline", "startTime", "ppid", "unit", "container",
  "runtime", "id", "pod",
  "intervalMs", "bytesSentPerSecond", "bytesReceivedPerSecond",
  "probe",
] as const;
type Key = (typeof KEYS)[number];
/**
 * A key as written: its position counted from 1 (0 is no name) and shifted left, the low bit
 * marking integer keys. Positions stay below 64, so every key is one byte.
 */
const K = Object.fromEntries(KEYS.map((k, i) => [k, (i + 1) * 2])) as Record<Key, number>;
if (KEYS.length >= 64) throw new Error("guest-payload: more keys than one-byte key codes");

const FIRST_BUFFER_BYTES = 64 << 10;
/** The largest buffer kept between payloads: one grown for a large endpoint list is let go. */
const KEPT_BUFFER_BYTES = 1 << 20;

/** Grows as needed and is reused between payloads: one copy of the result is all that is made. */
class PayloadWriter {
  private buf = new Uint8Array(FIRST_BUFFER_BYTES);
  private view = new DataView(this.buf.buffer);
  private n = 0;

  begin(): void {
    this.n = 0;
    this.byte(FORMAT_VERSION);
    this.uleb(KEYS.length);
    for (const k of KEYS) this.chars(k);
  }

  finish(): Uint8Array {
    const out = this.buf.slice(0, this.n);
    if (this.buf.length > KEPT_BUFFER_BYTES) {
      this.buf = new Uint8Array(FIRST_BUFFER_BYTES);
      this.view = new DataView(this.buf.buffer);
    }
    return out;
  }

  private room(bytes: number): void {
    if (this.n + bytes <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.n + bytes) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.n));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  private byte(b: number): void {
    this.room(1);
    this.buf[this.n++] = b;
  }

  private uleb(v: number): void {
    this.room(5);
    while (v >= 0x80) {
      this.buf[this.n++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[this.n++] = v;
  }

  /** A string's length and flag, then its characters: one byte each, or UTF-16 when any needs it. */
  private chars(s: string): void {
    const len = s.length;
    let wide = 0;
    for (let i = 0; i < len; i++) {
      if (s.charCodeAt(i) > 0xff) {
        wide = 1;
        break;
      }
    }
    this.uleb(len * 2 + wide);
    this.room(len << wide);
    const buf = this.buf;
    let n = this.n;
    if (wide) {
      for (let i = 0; i < len; i++) {
        const c = s.charCodeAt(i);
        buf[n++] = c & 0xff;
        buf[n++] = c >>> 8;
      }
    } else {
      for (let i = 0; i < len; i++) buf[n++] = s.charCodeAt(i);
    }
    this.n = n;
  }

  /** A property name: one of K's values. */
  key(code: number): void {
    this.byte(code);
  }

  object(fields: number): void {
    this.byte(Tag.Object);
    this.uleb(fields);
  }

  array(length: number): void {
    this.byte(Tag.Array);
    this.uleb(length);
  }

  null(): void {
    this.byte(Tag.Null);
  }

  boolean(b: boolean): void {
    this.byte(b ? Tag.True : Tag.False);
  }

  number(v: number): void {
    if ((v | 0) === v && (v !== 0 || 1 / v > 0)) {
      this.byte(Tag.Int32);
      // Zigzag, so small negative numbers stay short.
      this.uleb(((v << 1) ^ (v >> 31)) >>> 0);
    } else {
      this.room(9);
      this.buf[this.n++] = Tag.Float64;
      this.view.setFloat64(this.n, v, true);
      this.n += 8;
    }
  }

  string(s: string): void {
    this.byte(Tag.String);
    this.chars(s);
  }

  /** null and undefined both arrive as null, as they did in JSON. */
  numberOrNull(v: number | null | undefined): void {
    if (v === null || v === undefined) this.null();
    else this.number(v);
  }

  stringOrNull(v: string | null | undefined): void {
    if (v === null || v === undefined) this.null();
    else this.string(v);
  }

  /** Any JSON-like value (tests and the format probe). */
  value(v: unknown): void {
    if (v === null || v === undefined) this.null();
    else if (typeof v === "boolean") this.boolean(v);
    else if (typeof v === "number") this.number(v);
    else if (typeof v === "string") this.string(v);
    else if (Array.isArray(v)) {
      this.array(v.length);
      for (const x of v) this.value(x);
    } else throw new TypeError(`cannot encode ${typeof v} for the sandbox`);
  }
}

const writer = new PayloadWriter();

class ProcessTable {
  readonly list: ProcessInfo[] = [];
  private readonly index = new Map<ProcessInfo, number>();

  ref(p: ProcessInfo | null): number {
    if (!p) return -1;
    let i = this.index.get(p);
    if (i === undefined) {
      i = this.list.length;
      this.index.set(p, i);
      this.list.push(p);
    }
    return i;
  }
}

function writeEndpoint(w: PayloadWriter, ep: Endpoint, procs: ProcessTable): void {
  // Where the OS tells them (Windows), as in list --json: absent otherwise, not null.
  const owner = ep.createdAt !== undefined;
  w.object(owner ? 25 : 23);
  w.key(K.protocol); w.string(ep.protocol);
  w.key(K.family); w.number(ep.family);
  w.key(K.localAddress); w.string(ep.localAddress);
  w.key(K.localPort); w.number(ep.localPort);
  w.key(K.remoteAddress); w.string(ep.remoteAddress);
  w.key(K.remotePort); w.number(ep.remotePort);
  w.key(K.state); w.stringOrNull(ep.state);
  w.key(K.inode); w.numberOrNull(ep.inode);
  w.key(K.uid); w.numberOrNull(ep.uid);
  w.key(K.user); w.stringOrNull(ep.user);
  w.key(K.bytesSent); w.numberOrNull(ep.bytesSent);
  w.key(K.bytesReceived); w.numberOrNull(ep.bytesReceived);
  w.key(K.packetsSent); w.numberOrNull(ep.packetsSent);
  w.key(K.packetsReceived); w.numberOrNull(ep.packetsReceived);
  w.key(K.process); w.number(procs.ref(ep.process));
  w.key(K.pids);
  const pids = ep.pids ?? [];
  w.array(pids.length);
  for (const pid of pids) w.number(pid);
  w.key(K.interfaceIndex); w.number(ep.interfaceIndex ?? 0);
  w.key(K.receiveQueue); w.numberOrNull(ep.receiveQueue);
  w.key(K.sendQueue); w.numberOrNull(ep.sendQueue);
  w.key(K.rttMs); w.numberOrNull(ep.rttMs);
  w.key(K.cookie); w.stringOrNull(ep.cookie);
  w.key(K.namespace);
  if (ep.namespace) writeNamespace(w, ep.namespace);
  else w.null();
  w.key(K.openedAt); w.stringOrNull(ep.openedAt ?? null);
  if (owner) {
    w.key(K.createdAt); w.stringOrNull(ep.createdAt);
    w.key(K.module); w.stringOrNull(ep.module);
  }
}

function writeContainer(w: PayloadWriter, c: ContainerInfo | null | undefined): void {
  if (!c) {
    w.null();
    return;
  }
  w.object(3);
  w.key(K.runtime); w.string(c.runtime);
  w.key(K.id); w.stringOrNull(c.id);
  w.key(K.pod); w.stringOrNull(c.pod);
}

function writeNamespace(w: PayloadWriter, ns: NamespaceTag): void {
  w.object(3);
  w.key(K.inode); w.number(ns.inode);
  w.key(K.name); w.stringOrNull(ns.name);
  w.key(K.container); writeContainer(w, ns.container);
}

function writeProcess(w: PayloadWriter, p: ProcessInfo): void {
  w.object(10);
  w.key(K.pid); w.number(p.pid);
  w.key(K.name); w.string(p.name);
  w.key(K.path); w.stringOrNull(p.path);
  w.key(K.cmdline); w.stringOrNull(p.cmdline);
  w.key(K.uid); w.numberOrNull(p.uid);
  w.key(K.user); w.stringOrNull(p.user);
  w.key(K.startTime); w.stringOrNull(p.startTime);
  w.key(K.ppid); w.numberOrNull(p.ppid);
  w.key(K.unit); w.stringOrNull(p.unit);
  w.key(K.container); writeContainer(w, p.container);
}

/** A counter delta's fields in the order they are written; every one is a number. */
const COUNTER_KEYS = [
  "bytesSent", "bytesReceived", "packetsSent", "packetsReceived", "intervalMs", "bytesSentPerSecond", "bytesReceivedPerSecond",
] as const satisfies readonly (keyof CounterDelta & Key)[];

function writeCounters(w: PayloadWriter, c: CounterDelta): void {
  w.object(COUNTER_KEYS.length);
  for (const k of COUNTER_KEYS) {
    w.key(K[k]);
    w.number(c[k]);
  }
}

function writeEvent(w: PayloadWriter, e: EndpointEvent, procs: ProcessTable): void {
  const extra = e.type === "state-changed" || e.type === "counters" || e.shortLived === true;
  w.object(extra ? 5 : 4);
  w.key(K.type); w.string(e.type);
  w.key(K.seq); w.number(e.seq);
  w.key(K.time); w.number(e.time);
  w.key(K.endpoint); writeEndpoint(w, e.endpoint, procs);
  if (e.type === "state-changed") {
    w.key(K.previousState); w.stringOrNull(e.previousState);
  } else if (e.type === "counters") {
    w.key(K.counters);
    if (e.counters) writeCounters(w, e.counters);
    else w.null();
  } else if (e.shortLived === true) {
    w.key(K.shortLived); w.boolean(true);
  }
}

/** Items first, then the processes they named: one pass over the items. */
function payload(count: number, writeItems: (procs: ProcessTable) => void): Uint8Array {
  const procs = new ProcessTable();
  writer.begin();
  writer.object(2);
  writer.key(K.e);
  writer.array(count);
  writeItems(procs);
  writer.key(K.p);
  writer.array(procs.list.length);
  for (const p of procs.list) writeProcess(writer, p);
  return writer.finish();
}

/** A batch of events: {e: events, p: processes}. */
export function encodeEvents(events: readonly EndpointEvent[]): Uint8Array {
  return payload(events.length, (procs) => {
    for (const e of events) writeEvent(writer, e, procs);
  });
}

/** A list of endpoints (for start and periodic): {e: endpoints, p: processes}. */
export function encodeEndpoints(endpoints: readonly Endpoint[]): Uint8Array {
  return payload(endpoints.length, (procs) => {
    for (const ep of endpoints) writeEndpoint(writer, ep, procs);
  });
}

/**
 * A value that exercises every tag and both string widths. The sandbox decodes it at start and
 * compares the guest's JSON of it with PROBE_JSON: a QuickJS whose format differs is caught there.
 */
export const PROBE_VALUE: unknown[] = [
  null, true, false, 0, 1, -1, 63, 64, -65, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, 1.5, -0.25, 1e300, 1763769600123,
  "", "tcp", "\u00e9t\u00e9", "\u4e2d\u6587 \u{1f600}", "x".repeat(300), [[], [1, [2, "3"]]],
];

export function encodeProbe(): Uint8Array {
  writer.begin();
  writer.object(1);
  writer.key(K.probe);
  writer.value(PROBE_VALUE);
  return writer.finish();
}

export const PROBE_JSON = JSON.stringify({ probe: PROBE_VALUE });
