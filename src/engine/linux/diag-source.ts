/**
 * Where sock_diag reply datagrams come from: the live kernel, or a recording of an earlier dump
 * (as `ss` can replay a dump named by an environment variable), so a problem seen on a user's box
 * can be reproduced here from the file it recorded.
 */
import fs from "node:fs";
import { DecodeError, UnsupportedError } from "../../errors.ts";
import { NetlinkSocket } from "./netlink-socket.ts";
import {
  ALL_STATES_MASK,
  INET_DIAG_INFO,
  INET_DIAG_SKV6ONLY,
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

export class ReplayDiagSource implements DiagSource {
  private readonly datagrams = new Map<string, Uint8Array[]>();

  /**
   * `contents`: the file's text when it is read already (a FIFO can be read only once).
   * `otherLine` takes the lines that are not datagrams; one it does not take is an error.
   */
  constructor(file: string, contents?: string, otherLine?: (item: Record<string, unknown>, where: string) => boolean) {
    let text: string;
    try {
      text = contents ?? fs.readFileSync(file, "utf8");
    } catch (err) {
      throw new UnsupportedError(`cannot read recording ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    let lineNo = 0;
    for (const line of text.split("\n")) {
      lineNo++;
      if (!line.trim()) continue;
      let item: { family?: unknown; protocol?: unknown; data?: unknown };
      try {
        item = JSON.parse(line);
      } catch {
        throw new DecodeError(`${file}:${lineNo}: not a JSON line`);
      }
      if (item !== null && typeof item === "object" && !("family" in item) && otherLine?.(item, `${file}:${lineNo}`)) continue;
      // A line of `null` parses too: it has no fields.
      if (typeof item?.family !== "number" || typeof item.protocol !== "number" || typeof item.data !== "string") {
        throw new DecodeError(`${file}:${lineNo}: expected {family, protocol, data}`);
      }
      const key = `${item.family}/${item.protocol}`;
      const list = this.datagrams.get(key) ?? [];
      list.push(new Uint8Array(Buffer.from(item.data, "base64")));
      this.datagrams.set(key, list);
    }
  }

  dump(family: number, protocol: number, sink: RecordSink): DumpResult {
    let count = 0;
    let interrupted = false;
    for (const datagram of this.datagrams.get(`${family}/${protocol}`) ?? []) {
      for (const msg of decodeMessages(datagram)) {
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
