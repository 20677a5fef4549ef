/**
 * Netlink sock_diag replies: dump datagrams, socket-destroy notices, SOCK_DESTROY acknowledgements
 * and errors, and recorded dumps replayed from a file. Inputs are built message by message to the
 * kernel's layouts (<linux/netlink.h>, <linux/inet_diag.h>), mixed with the messages of a real
 * recorded dump, then truncated, bit-flipped and given lying lengths.
 */
import fs from "node:fs";
import path from "node:path";
import fc from "fast-check";
import {
  AF_INET,
  AF_INET6,
  INET_DIAG_INFO,
  INET_DIAG_MSG_LEN,
  INET_DIAG_SHUTDOWN,
  INET_DIAG_SKV6ONLY,
  IPPROTO_TCP,
  IPPROTO_UDP,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  NLMSG_NOOP,
  NLM_F_ACK,
  NLM_F_DUMP_INTR,
  NLM_F_MULTI,
  NLM_F_REQUEST,
  SOCK_DESTROY,
  SOCK_DIAG_BY_FAMILY,
  decodeMessages,
  encodeDiagRequest,
  visitMessages,
  type DiagRecord,
} from "../../src/engine/linux/sock-diag-codec.ts";
import { ReplayDiagSource } from "../../src/engine/linux/diag-source.ts";
import { dumpAll } from "../support/diag-dump.ts";
import { atSomeOffset, concatBytes, filledBytes, mutatedBytes, mutatedText, noise, randomBytes, randomText, sometimes, u16, u32, u8 } from "./mutate.ts";
import { scratchFile } from "./scratch.ts";
import { target } from "./target.ts";

const FIXTURE = path.join(import.meta.dirname, "../fixtures/netlink/dump-basic.ndjson");

interface RecordedDatagram {
  family: number;
  protocol: number;
  data: Uint8Array;
}

const RECORDED: RecordedDatagram[] = fs
  .readFileSync(FIXTURE, "utf8")
  .trim()
  .split("\n")
  .map((line) => JSON.parse(line) as { family: number; protocol: number; data: string })
  .map((d) => ({ family: d.family, protocol: d.protocol, data: new Uint8Array(Buffer.from(d.data, "base64")) }));

/** Every message of the recording on its own (header included, padding dropped). */
const RECORDED_MESSAGES: Uint8Array[] = RECORDED.flatMap(({ data }) => {
  const out: Uint8Array[] = [];
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let o = 0; o + NLMSG_HDRLEN <= data.length; ) {
    const len = view.getUint32(o, true);
    if (len < NLMSG_HDRLEN || o + len > data.length) break;
    out.push(data.slice(o, o + len));
    o += (len + 3) & ~3;
  }
  return out;
});

const align4 = (n: number) => (n + 3) & ~3;

// ---- message bodies ----

/** A route attribute: length, type (sometimes with NLA_F_NESTED / NLA_F_NET_BYTEORDER), payload. */
interface Attribute {
  type: number;
  payload: Uint8Array;
  /** Replaces the true rta_len: attributes that claim more or fewer bytes than they have. */
  lengthLie: number | null;
}

/** tcp_info sizes of interest: the fields the decoder reads end at 72, 128, 136, 144 and 208. */
const TCP_INFO_LENGTHS = [0, 1, 67, 68, 71, 72, 104, 120, 127, 128, 135, 136, 143, 144, 192, 199, 200, 207, 208, 232, 248, 280];

const attribute: fc.Arbitrary<Attribute> = fc.record({
  type: fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(INET_DIAG_INFO, INET_DIAG_SKV6ONLY, INET_DIAG_SHUTDOWN) },
    { weight: 1, arbitrary: fc.constantFrom(INET_DIAG_INFO | 0x8000, INET_DIAG_INFO | 0x4000, INET_DIAG_SKV6ONLY | 0xc000) },
    { weight: 2, arbitrary: u16 },
  ),
  payload: fc.oneof(
    fc.constantFrom(...TCP_INFO_LENGTHS).chain((n) => filledBytes(n, n)),
    fc.uint8Array({ maxLength: 12 }),
  ),
  lengthLie: sometimes(fc.oneof(u16, fc.integer({ min: -8, max: 8 })), 12),
});

function encodeAttribute(a: Attribute): Uint8Array {
  const trueLen = 4 + a.payload.length;
  const out = new Uint8Array(align4(trueLen));
  const view = new DataView(out.buffer);
  // Small lies are relative to the true length, others are any 16-bit value.
  const lie = a.lengthLie;
  const len = lie === null ? trueLen : lie >= -8 && lie <= 8 ? Math.max(0, trueLen + lie) : lie;
  view.setUint16(0, len & 0xffff, true);
  view.setUint16(2, a.type, true);
  out.set(a.payload, 4);
  return out;
}

const address16 = fc.oneof(
  filledBytes(16, 16),
  fc.constantFrom(
    new Uint8Array(16),
    Uint8Array.from([127, 0, 0, 1, ...new Array(12).fill(0)]),
    Uint8Array.from([...new Array(15).fill(0), 1]),
    Uint8Array.from([...new Array(10).fill(0), 0xff, 0xff, 10, 0, 0, 5]),
    Uint8Array.from([0xfe, 0x80, ...new Array(13).fill(0), 1]),
  ),
);

/** struct inet_diag_msg followed by attributes. */
const diagBody: fc.Arbitrary<Uint8Array> = fc
  .record({
    family: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(AF_INET, AF_INET6) }, { weight: 1, arbitrary: u8 }),
    state: fc.oneof(fc.integer({ min: 0, max: 13 }), u8),
    timer: u8,
    retrans: u8,
    sport: u16,
    dport: u16,
    src: address16,
    dst: address16,
    ifindex: u32,
    cookie: fc.tuple(u32, u32),
    expires: u32,
    rqueue: u32,
    wqueue: u32,
    uid: u32,
    inode: u32,
    attributes: fc.array(attribute, { maxLength: 4 }),
  })
  .map((m) => {
    const fixed = new Uint8Array(INET_DIAG_MSG_LEN);
    const v = new DataView(fixed.buffer);
    v.setUint8(0, m.family);
    v.setUint8(1, m.state);
    v.setUint8(2, m.timer);
    v.setUint8(3, m.retrans);
    v.setUint16(4, m.sport, false);
    v.setUint16(6, m.dport, false);
    fixed.set(m.src, 8);
    fixed.set(m.dst, 24);
    v.setUint32(40, m.ifindex, true);
    v.setUint32(44, m.cookie[0], true);
    v.setUint32(48, m.cookie[1], true);
    v.setUint32(52, m.expires, true);
    v.setUint32(56, m.rqueue, true);
    v.setUint32(60, m.wqueue, true);
    v.setUint32(64, m.uid, true);
    v.setUint32(68, m.inode, true);
    return concatBytes([fixed, ...m.attributes.map(encodeAttribute)]);
  });

/** A request as the kernel echoes it in an error or acknowledgement (struct nlmsgerr.msg). */
const echoedRequest: fc.Arbitrary<Uint8Array> = fc
  .record({
    type: fc.constantFrom(SOCK_DIAG_BY_FAMILY, SOCK_DESTROY),
    family: fc.constantFrom(AF_INET, AF_INET6),
    protocol: fc.constantFrom(IPPROTO_TCP, IPPROTO_UDP),
    sequence: u32,
    cut: fc.constantFrom(16, 72, 72),
  })
  .map((r) =>
    new Uint8Array(
      encodeDiagRequest({ type: r.type, family: r.family, protocol: r.protocol, states: 0xffffffff, extensions: 0, sequence: r.sequence }).subarray(0, r.cut),
    ),
  );

const ERRNOS = [0, -1, -2, -4, -11, -13, -16, -22, -93, -95, -97, -105, -0x7fffffff - 1, 0x7fffffff];

/** struct nlmsgerr: a negative errno (0 acknowledges), then the request it answers. */
const errorBody: fc.Arbitrary<Uint8Array> = fc
  .tuple(fc.oneof(fc.constantFrom(...ERRNOS), fc.integer({ min: -0x80000000, max: 0x7fffffff })), fc.option(echoedRequest), fc.nat({ max: 4 }))
  .map(([errno, echo, short]) => {
    const head = new Uint8Array(4);
    new DataView(head.buffer).setInt32(0, errno, true);
    const whole = echo ? concatBytes([head, echo]) : head;
    // Now and then an error message shorter than the errno it should carry.
    return short === 0 ? whole.slice(0, Math.abs(errno) % 4) : whole;
  });

const doneBody: fc.Arbitrary<Uint8Array> = fc.constantFrom(new Uint8Array(4), new Uint8Array(0), Uint8Array.from([0xff, 0xff, 0xff, 0xff]));

interface Message {
  type: number;
  flags: number;
  sequence: number;
  port: number;
  body: Uint8Array;
  /** Replaces the true nlmsg_len. */
  lengthLie: number | null;
}

const flags = fc.oneof(fc.constantFrom(NLM_F_MULTI, NLM_F_MULTI | NLM_F_DUMP_INTR, NLM_F_REQUEST | NLM_F_ACK, 0, 0x100), u16);
const sequence = fc.oneof(fc.constantFrom(0, 1, 2), u32);
const port = fc.oneof(fc.constant(0), u32);
const messageLengthLie = sometimes(fc.oneof(u32, fc.integer({ min: -20, max: 20 })), 16);

/** Messages of several kinds, each kind with the body its type carries. */
function messages(kinds: { weight: number; type: fc.Arbitrary<number>; body: fc.Arbitrary<Uint8Array> }[]): fc.Arbitrary<Message> {
  return fc.oneof(
    ...kinds.map(({ weight, type, body }) => ({
      weight,
      arbitrary: fc.record({ type, flags, sequence, port, body, lengthLie: messageLengthLie }),
    })),
  );
}

const diagOrNoise = fc.oneof({ weight: 12, arbitrary: diagBody }, { weight: 1, arbitrary: randomBytes });
const DIAG = { type: fc.constant(SOCK_DIAG_BY_FAMILY), body: diagOrNoise };
const DESTROY = { type: fc.constant(SOCK_DESTROY), body: diagOrNoise };
const ERROR = { type: fc.constant(NLMSG_ERROR), body: errorBody };
const DONE = { type: fc.constant(NLMSG_DONE), body: doneBody };
const OTHER = { type: fc.oneof(fc.constantFrom(NLMSG_NOOP, 0, 4, 16, 0xffff), u16), body: fc.uint8Array({ maxLength: 40 }) };

function encodeMessage(m: Message): Uint8Array {
  const trueLen = NLMSG_HDRLEN + m.body.length;
  const out = new Uint8Array(align4(trueLen));
  const view = new DataView(out.buffer);
  let len = trueLen;
  if (m.lengthLie !== null) len = m.lengthLie >= -20 && m.lengthLie <= 20 ? Math.max(0, trueLen + m.lengthLie) : m.lengthLie;
  view.setUint32(0, len >>> 0, true);
  view.setUint16(4, m.type, true);
  view.setUint16(6, m.flags, true);
  view.setUint32(8, m.sequence, true);
  view.setUint32(12, m.port, true);
  out.set(m.body, NLMSG_HDRLEN);
  return out;
}

/** A datagram of messages from `message`, and now and then a message of the real recording. */
function datagram(message: fc.Arbitrary<Message>, maxMessages = 6): fc.Arbitrary<Uint8Array> {
  const piece = fc.oneof(
    { weight: 4, arbitrary: message.map(encodeMessage) },
    { weight: 1, arbitrary: fc.constantFrom(...RECORDED_MESSAGES).map((m) => m.slice()) },
  );
  return fc.array(piece, { maxLength: maxMessages }).map(concatBytes);
}

/**
 * An oversized datagram: hundreds of real messages (tens of kilobytes, as a big dump's receive
 * buffer holds), sometimes with one lie in it.
 */
const oversized: fc.Arbitrary<Uint8Array> = fc
  .tuple(fc.array(fc.constantFrom(...RECORDED_MESSAGES), { minLength: 1, maxLength: 4 }), fc.integer({ min: 20, max: 300 }))
  .map(([pieces, times]) => concatBytes(new Array<Uint8Array[]>(times).fill(pieces.map((m) => m.slice(0, (m.length + 3) & ~3))).flat()));

/** Structured datagrams, recorded ones, their mutations and plain noise, at varied offsets. */
function netlinkInput(message: fc.Arbitrary<Message>): fc.Arbitrary<Uint8Array> {
  const built = datagram(message);
  const recorded = fc.constantFrom(...RECORDED.map((d) => d.data));
  return atSomeOffset(
    fc.oneof(
      { weight: 50, arbitrary: built },
      { weight: 30, arbitrary: mutatedBytes(built, 3) },
      { weight: 10, arbitrary: recorded },
      { weight: 20, arbitrary: mutatedBytes(recorded, 4) },
      { weight: 10, arbitrary: randomBytes },
      { weight: 2, arbitrary: oversized },
      { weight: 2, arbitrary: mutatedBytes(oversized, 1) },
    ),
  );
}

const dumpMessage = messages([
  { weight: 8, ...DIAG },
  { weight: 2, ...DONE },
  { weight: 2, ...ERROR },
  { weight: 1, ...DESTROY },
  { weight: 1, ...OTHER },
]);

const ackMessage = messages([
  { weight: 6, ...ERROR },
  { weight: 1, ...DESTROY },
  { weight: 1, ...DIAG },
  { weight: 1, ...DONE },
  { weight: 1, ...OTHER },
]);

/** Reads what the engine reads of a record, as the dump and event paths copy it. */
function touch(r: DiagRecord): void {
  void `${r.source}${r.destination}${r.sourcePort}${r.destinationPort}${r.bytesAcked}${r.bytesSent}${r.v6Only}`;
}

export const netlinkDump = target({
  name: "netlink-dump",
  covers: "visitMessages, decodeMessages (SOCK_DIAG_BY_FAMILY dump replies)",
  input: netlinkInput(dumpMessage),
  decode(bytes) {
    for (const m of decodeMessages(bytes)) if (m.kind === "diag") touch(m.record);
  },
});

export const netlinkDestroyEvents = target({
  name: "netlink-destroy-events",
  covers: "visitMessages as the socket-destroy notice reader drives it",
  input: netlinkInput(dumpMessage),
  decode(bytes) {
    const out: DiagRecord[] = [];
    visitMessages(bytes, { diag: (r) => out.push({ ...r }), done: () => {}, error: () => {} }, SOCK_DIAG_BY_FAMILY);
    for (const r of out) touch(r);
  },
});

const ENOENT = 2;

export const netlinkAck = target({
  name: "netlink-ack",
  covers: "decodeMessages(…, SOCK_DESTROY): acknowledgements and errors of SOCK_DESTROY",
  input: netlinkInput(ackMessage),
  decode(bytes) {
    // What destroySocket does with the answer.
    for (const msg of decodeMessages(bytes, SOCK_DESTROY)) {
      if (msg.kind !== "error") continue;
      if (msg.errno === 0 || msg.errno === ENOENT) return;
      void String(msg.errno);
      return;
    }
  },
});

// ---- recordings ----

/** One line of a recording: well-formed with a mutated datagram, or broken JSON. */
const recordingLine: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .record({
        family: fc.oneof(fc.constantFrom(AF_INET, AF_INET6), fc.integer(), fc.double()),
        protocol: fc.oneof(fc.constantFrom(IPPROTO_TCP, IPPROTO_UDP), fc.integer()),
        data: fc.oneof(netlinkInput(dumpMessage).map((b) => Buffer.from(b).toString("base64")), fc.string({ maxLength: 40 })),
      })
      .map((o) => JSON.stringify(o)),
  },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
  { weight: 2, arbitrary: mutatedText(fc.constantFrom(...RECORDED.map((d) => JSON.stringify({ ...d, data: Buffer.from(d.data).toString("base64") })))) },
  { weight: 1, arbitrary: fc.oneof(noise, randomText) },
);

export const netlinkReplay = target({
  name: "netlink-replay",
  covers: "ReplayDiagSource (a recorded dump read back with --replay), dumpAll",
  input: fc.array(recordingLine, { maxLength: 5 }).map((lines) => lines.join("\n")),
  decode(text) {
    const file = scratchFile("replay.ndjson", text);
    const source = new ReplayDiagSource(file);
    for (const family of [AF_INET, AF_INET6]) {
      for (const protocol of [IPPROTO_TCP, IPPROTO_UDP]) for (const r of dumpAll(source, family, protocol)) touch(r);
    }
    source.close();
  },
});

export const NETLINK_TARGETS = [netlinkDump, netlinkDestroyEvents, netlinkAck, netlinkReplay];
