/**
 * Where sock_diag reply datagrams come from: the live kernel, or a recording of an earlier dump
 * (as `ss` can replay a dump named by an environment variable), so a problem seen on a user's box
 * can be reproduced here from the file it recorded.
 */
import fs from "node:fs";
import { DecodeError, UnsupportedError } from "../../errors.ts";
import { NetlinkSocket } from "./netlink-socket.ts";
import {
  AF_INET,
  AF_INET6,
  ALL_STATES_MASK,
  INET_DIAG_INFO,
  INET_DIAG_MSG_LEN,
  INET_DIAG_SKV6ONLY,
  IPPROTO_TCP,
  IPPROTO_UDP,
  NLMSG_HDRLEN,
  NLM_F_DUMP_INTR,
  decodeMessages,
  encodeDiagRequest,
  visitMessages,
  type DiagRecord,
  type MessageVisitor,
} from "./sock-diag-codec.ts";
import { EAFNOSUPPORT, ENOENT, EPROTONOSUPPORT, errnoName } from "./errno.ts";

export interface DumpResult {
  /** How many sockets were handed to the callback. */
  count: number;
  /** The kernel flagged the dump as interrupted by concurrent changes (NLM_F_DUMP_INTR). */
  interrupted: boolean;
}

/** Receives each socket as it is decoded; the record is reused after the call returns. */
export type RecordSink = (record: DiagRecord) => void;

export interface DiagSource {
  dump(family: number, protocol: number, sink: RecordSink): DumpResult;
  close(): void;
}

/** Requested per socket: tcp_info for counters and rtt, and the v6only flag. */
const EXTENSIONS = (1 << (INET_DIAG_INFO - 1)) | (1 << (INET_DIAG_SKV6ONLY - 1));

/** A recorder receives every raw datagram of a live dump. */
export type DatagramRecorder = (family: number, protocol: number, datagram: Uint8Array) => void;

export class LiveDiagSource implements DiagSource {
  private readonly socket: NetlinkSocket;
  private sequence = 1;
  /** A dump that failed part way (a short read, EINTR): its rest is still queued in the kernel. */
  private unfinished = false;

  /** `socket` is a test seam (a socket over injected system calls). */
  constructor(
    private readonly recorder?: DatagramRecorder,
    socket?: NetlinkSocket,
  ) {
    this.socket = socket ?? new NetlinkSocket();
  }

  dump(family: number, protocol: number, sink: RecordSink): DumpResult {
    if (this.unfinished) this.discardRest();
    const seq = this.sequence++;
    this.unfinished = true;
    this.socket.send(encodeDiagRequest({ family, protocol, states: ALL_STATES_MASK, extensions: EXTENSIONS, sequence: seq }));
    let count = 0;
    let interrupted = false;
    let finished = false;
    const visitor: MessageVisitor = {
      diag(record, sequence, flags) {
        if (sequence !== seq) return;
        if (flags & NLM_F_DUMP_INTR) interrupted = true;
        count++;
        sink(record);
      },
      done(sequence, flags) {
        if (sequence !== seq) return;
        if (flags & NLM_F_DUMP_INTR) interrupted = true;
        finished = true;
      },
      error(errno, sequence) {
        if (sequence !== seq || errno === 0) return;
        // Kernels without a protocol's diag module (udp_diag not built and not loadable) answer
        // ENOENT; that protocol simply has nothing to show.
        if (errno === ENOENT || errno === EPROTONOSUPPORT || errno === EAFNOSUPPORT) {
          finished = true;
          return;
        }
        throw new UnsupportedError(`sock_diag dump of family ${family} protocol ${protocol} failed: ${errnoName(errno)}`);
      },
    };
    // A dump ends with NLMSG_DONE; the bound only stops a misbehaving kernel from looping forever.
    for (let batch = 0; batch < 10_000_000 && !finished; batch++) {
      const datagram = this.socket.receive();
      this.recorder?.(family, protocol, datagram);
      visitMessages(datagram, visitor);
    }
    if (!finished) throw new DecodeError("sock_diag dump never ended");
    this.unfinished = false;
    return { count, interrupted };
  }

  /**
   * Reads what is left of a dump that failed part way, without blocking. The kernel runs one dump
   * per socket and makes each next part as the last one is read; a new request while one runs
   * would be refused (EBUSY), and every later refresh with it.
   */
  private discardRest(): void {
    for (let i = 0; i < 1_000_000; i++) {
      const r = this.socket.receiveNonBlocking();
      if (r === "empty") break;
    }
    this.unfinished = false;
  }

  close(): void {
    this.socket.close();
  }
}

/**
 * One line per datagram: {"family":2,"protocol":6,"data":"<base64>"}; `append` adds lines of
 * other kinds (the sockets' owners), which a replay hands to its `otherLine`.
 */
export function recordingWriter(file: string): { recorder: DatagramRecorder; append(lines: readonly string[]): void; finish(): void } {
  const fd = fs.openSync(file, "w", 0o600);
  return {
    recorder(family, protocol, datagram) {
      fs.writeSync(fd, JSON.stringify({ family, protocol, data: Buffer.from(datagram).toString("base64") }) + "\n");
    },
    append(lines) {
      if (lines.length > 0) fs.writeSync(fd, lines.join("\n") + "\n");
    },
    finish() {
      fs.closeSync(fd);
    },
  };
}

/** Far longer than any line a recording holds (a 64 KiB datagram, a process's 6 MiB of arguments). */
const MAX_LINE_BYTES = 16 * 1024 * 1024;
/** The fewest bytes a socket takes in a datagram: a netlink header and an inet_diag_msg. */
const SOCKET_BYTES = NLMSG_HDRLEN + INET_DIAG_MSG_LEN;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * One family and protocol's datagrams back to back, with where each ends and its line: a
 * Uint8Array apiece costs some 300 bytes, so a file of tiny datagrams took six times its size.
 */
interface Datagrams {
  bytes: Uint8Array;
  used: number;
  ends: number[];
  lines: number[];
}

/** The dumps a snapshot asks for; datagrams of any other kind would never be read. */
const DUMPED = new Set([`${AF_INET}/${IPPROTO_TCP}`, `${AF_INET}/${IPPROTO_UDP}`, `${AF_INET6}/${IPPROTO_TCP}`, `${AF_INET6}/${IPPROTO_UDP}`]);

export class ReplayDiagSource implements DiagSource {
  private readonly datagrams = new Map<string, Datagrams>();

  /**
   * `contents`: the file's bytes when they are read already (a FIFO can be read only once).
   * `otherLine` takes the lines that are not datagrams; one it does not take is an error.
   */
  constructor(
    private readonly file: string,
    contents?: Uint8Array,
    otherLine?: (item: Record<string, unknown>, where: string) => boolean,
  ) {
    let bytes: Buffer;
    try {
      bytes = contents ? Buffer.from(contents.buffer, contents.byteOffset, contents.byteLength) : fs.readFileSync(file);
    } catch (err) {
      throw new UnsupportedError(`cannot read recording ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    // Every other line stands for sockets of the datagrams before it (a socket's owners, their
    // processes): more of them than those sockets could be is a file made to fill memory.
    let datagramBytes = 0;
    let otherLines = 0;
    let lineNo = 0;
    // Line by line from the bytes: no string of the whole file, and a long line is measured
    // before it is decoded or parsed.
    for (let start = 0; start < bytes.length; ) {
      lineNo++;
      const newline = bytes.indexOf(10, start);
      const end = newline < 0 ? bytes.length : newline;
      const lineStart = start;
      start = end + 1;
      if (end - lineStart > MAX_LINE_BYTES) throw new DecodeError(`${file}:${lineNo}: line longer than ${MAX_LINE_BYTES >> 20} MiB`);
      const line = bytes.toString("utf8", lineStart, end);
      if (!line.trim()) continue;
      let item: { family?: unknown; protocol?: unknown; data?: unknown };
      try {
        item = JSON.parse(line);
      } catch {
        throw new DecodeError(`${file}:${lineNo}: not a JSON line`);
      }
      if (item !== null && typeof item === "object" && !("family" in item) && otherLine?.(item, `${file}:${lineNo}`)) {
        if (++otherLines > 1 + (2 * datagramBytes) / SOCKET_BYTES) {
          throw new DecodeError(`${file}:${lineNo}: more owner lines than the recording has sockets`);
        }
        continue;
      }
      // A line of `null` parses too: it has no fields.
      if (typeof item?.family !== "number" || typeof item.protocol !== "number" || typeof item.data !== "string" || !BASE64.test(item.data)) {
        throw new DecodeError(`${file}:${lineNo}: expected {family, protocol, data}`);
      }
      const key = `${item.family}/${item.protocol}`;
      const datagram = Buffer.from(item.data, "base64");
      if (!DUMPED.has(key) || datagram.byteLength === 0) continue;
      datagramBytes += datagram.byteLength;
      this.keep(key, datagram, lineNo);
    }
  }

  private keep(key: string, datagram: Uint8Array, line: number): void {
    let d = this.datagrams.get(key);
    if (!d) this.datagrams.set(key, (d = { bytes: new Uint8Array(datagram.byteLength), used: 0, ends: [], lines: [] }));
    if (d.used + datagram.byteLength > d.bytes.byteLength) {
      const grown = new Uint8Array(Math.max(2 * d.bytes.byteLength, d.used + datagram.byteLength));
      grown.set(d.bytes.subarray(0, d.used));
      d.bytes = grown;
    }
    d.bytes.set(datagram, d.used);
    d.used += datagram.byteLength;
    d.ends.push(d.used);
    d.lines.push(line);
  }

  dump(family: number, protocol: number, sink: RecordSink): DumpResult {
    let count = 0;
    let interrupted = false;
    const d = this.datagrams.get(`${family}/${protocol}`);
    for (let i = 0; d && i < d.ends.length; i++) {
      let messages;
      try {
        messages = decodeMessages(d.bytes.subarray(i === 0 ? 0 : d.ends[i - 1], d.ends[i]));
      } catch (err) {
        if (err instanceof DecodeError) throw new DecodeError(`${this.file}:${d.lines[i]}: ${err.message}`);
        throw err;
      }
      for (const msg of messages) {
        if (msg.flags & NLM_F_DUMP_INTR) interrupted = true;
        if (msg.kind === "diag") {
          count++;
          sink(msg.record);
        }
      }
    }
    return { count, interrupted };
  }

  close(): void {}
}
