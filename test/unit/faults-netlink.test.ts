/**
 * Netlink faults that cannot be made from outside, injected under the socket: recv interrupted
 * (EINTR), datagrams cut short, the destroy-notice queue overflowing (ENOBUFS). The sockets run
 * over a fake kernel that answers dumps with recorded datagrams, one part per read as the real
 * one does, and refuses a second dump while one is running (EBUSY).
 */
import { describe, expect, test } from "vitest";
import fs from "node:fs";
import path from "node:path";
import { NetlinkSocket, type NetlinkCalls } from "../../src/engine/linux/netlink-socket.ts";
import { LiveDiagSource } from "../../src/engine/linux/diag-source.ts";
import { DestroyEventReader } from "../../src/engine/linux/destroy-events.ts";
import { AF_INET, AF_INET6, IPPROTO_TCP, NLMSG_DONE, NLMSG_ERROR } from "../../src/engine/linux/sock-diag-codec.ts";
import { DecodeError, SystemCallError } from "../../src/errors.ts";

const EINTR = 4;
const EAGAIN = 11;
const EBUSY = 16;
const ENOBUFS = 105;
const MSG_DONTWAIT = 0x40;

const RECORDING = path.join(import.meta.dirname, "../fixtures/netlink/dump-basic.ndjson");

/** Every diag message of the recording, by "family/protocol", each as its own bytes. */
function recordedMessages(): Map<string, Buffer[]> {
  const out = new Map<string, Buffer[]>();
  for (const line of fs.readFileSync(RECORDING, "utf8").trim().split("\n")) {
    const d = JSON.parse(line) as { family: number; protocol: number; data: string };
    const b = Buffer.from(d.data, "base64");
    const list = out.get(`${d.family}/${d.protocol}`) ?? [];
    for (let off = 0; off + 16 <= b.length; ) {
      const len = b.readUInt32LE(off);
      if (b.readUInt16LE(off + 4) === 20) list.push(Buffer.from(b.subarray(off, off + len)));
      off += (len + 3) & ~3;
    }
    out.set(`${d.family}/${d.protocol}`, list);
  }
  return out;
}

const MESSAGES = recordedMessages();

function withSeq(msg: Buffer, seq: number): Buffer {
  const m = Buffer.from(msg);
  m.writeUInt32LE(seq, 8);
  return m;
}

function control(type: number, seq: number, errno = 0): Buffer {
  const m = Buffer.alloc(type === NLMSG_ERROR ? 36 : 20);
  m.writeUInt32LE(m.length, 0);
  m.writeUInt16LE(type, 4);
  m.writeUInt32LE(seq, 8);
  if (type === NLMSG_ERROR) m.writeInt32LE(-errno, 16);
  return m;
}

type Step = "eintr" | "short" | "enobufs";

/**
 * A fake kernel behind NetlinkCalls. A dump request queues its first part; each read makes the
 * next one, as netlink_recvmsg does; a request while a dump runs is answered with EBUSY.
 * `faults` are consumed by reads, in order.
 */
class FakeKernel implements NetlinkCalls {
  readonly queue: Buffer[] = [];
  private running: Buffer[] = [];
  faults: Step[] = [];
  private lastErrno = 0;
  reads = 0;

  socket(): number {
    return 42;
  }
  bind(): number {
    return 0;
  }
  setsockopt(): number {
    return 0;
  }
  close(): number {
    return 0;
  }
  errno(): number {
    return this.lastErrno;
  }

  sendto(_fd: number, buf: Buffer, len: number): number {
    const seq = buf.readUInt32LE(8);
    if (this.running.length > 0) {
      this.queue.push(control(NLMSG_ERROR, seq, EBUSY));
      return len;
    }
    const family = buf[16]!;
    const protocol = buf[17]!;
    const parts = (MESSAGES.get(`${family}/${protocol}`) ?? []).map((m) => withSeq(m, seq));
    parts.push(control(NLMSG_DONE, seq));
    this.queue.push(parts.shift()!);
    this.running = parts;
    return len;
  }

  /** A notice arriving on a subscribed socket. */
  notify(msg: Buffer): void {
    this.queue.push(msg);
  }

  recv(_fd: number, out: Buffer, len: number, flags: number): number {
    this.reads++;
    const fault = this.faults.shift();
    if (fault === "eintr") return this.fail(EINTR);
    if (fault === "enobufs") return this.fail(ENOBUFS);
    const next = this.queue.shift();
    if (!next) {
      if (flags & MSG_DONTWAIT) return this.fail(EAGAIN);
      throw new Error("a blocking read with nothing queued would wait forever");
    }
    // The kernel makes the next part of a running dump as this one is read.
    if (this.running.length > 0) this.queue.push(this.running.shift()!);
    // A datagram cut short: what did not fit is gone (MSG_TRUNC).
    const n = fault === "short" ? Math.min(len, Math.max(20, next.length >> 1)) : Math.min(len, next.length);
    next.copy(out, 0, 0, n);
    return n;
  }

  private fail(errno: number): number {
    this.lastErrno = errno;
    return -1;
  }
}

describe("netlink socket: EINTR", () => {
  test("a read interrupted a few times is retried and returns the datagram", () => {
    const k = new FakeKernel();
    const s = new NetlinkSocket(4, k);
    k.notify(control(NLMSG_DONE, 9));
    k.faults = ["eintr", "eintr", "eintr"];
    expect(s.receive().length).toBe(20);
    k.notify(control(NLMSG_DONE, 10));
    k.faults = ["eintr", "eintr"];
    expect(s.receiveNonBlocking()).toBeInstanceOf(Buffer);
  });

  test("a read interrupted again and again gives up with a named error instead of spinning", () => {
    const k = new FakeKernel();
    const s = new NetlinkSocket(4, k);
    k.faults = Array(20).fill("eintr");
    let err: unknown = null;
    try {
      s.receive();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SystemCallError);
    expect((err as SystemCallError).code).toBe("EINTR");
    expect(k.reads).toBe(8);
    // Without blocking, a string of interruptions is "nothing now": the notices wait.
    k.faults = Array(20).fill("eintr");
    k.notify(control(NLMSG_DONE, 1));
    expect(s.receiveNonBlocking()).toBe("empty");
    expect(k.queue).toHaveLength(1);
  });
});

describe("sock_diag dump: short reads and EINTR", () => {
  test("a clean dump of the recorded sockets", () => {
    const k = new FakeKernel();
    const source = new LiveDiagSource(undefined, new NetlinkSocket(4, k));
    const ports: number[] = [];
    expect(source.dump(AF_INET, IPPROTO_TCP, (r) => ports.push(r.sourcePort)).count).toBe(3);
    expect(source.dump(AF_INET6, IPPROTO_TCP, () => {}).count).toBe(4);
    expect(k.queue).toHaveLength(0);
  });

  test("a datagram cut short fails that dump with a DecodeError; the next dump is whole", () => {
    const k = new FakeKernel();
    const source = new LiveDiagSource(undefined, new NetlinkSocket(4, k));
    k.faults = ["short"];
    expect(() => source.dump(AF_INET6, IPPROTO_TCP, () => {})).toThrow(DecodeError);
    // The kernel still runs the first dump; a new request must not be refused because of it.
    for (let i = 0; i < 3; i++) {
      const seen: number[] = [];
      const r = source.dump(AF_INET6, IPPROTO_TCP, (rec) => seen.push(rec.inode));
      expect(r.count).toBe(4);
      expect(new Set(seen).size).toBe(4);
    }
    expect(k.queue).toHaveLength(0);
  });

  test("a short read in every dump fails each alone, never the ones after", () => {
    const k = new FakeKernel();
    const source = new LiveDiagSource(undefined, new NetlinkSocket(4, k));
    for (let i = 0; i < 50; i++) {
      k.faults = [...Array(i % 3).fill(undefined), "short"] as Step[];
      expect(() => source.dump(AF_INET6, IPPROTO_TCP, () => {})).toThrow(DecodeError);
      k.faults = [];
      expect(source.dump(AF_INET, IPPROTO_TCP, () => {}).count).toBe(3);
    }
  });

  test("EINTR in the middle of a dump is retried; a storm of them fails that dump only", () => {
    const k = new FakeKernel();
    const source = new LiveDiagSource(undefined, new NetlinkSocket(4, k));
    k.faults = [undefined, "eintr", "eintr", undefined, "eintr"] as Step[];
    expect(source.dump(AF_INET6, IPPROTO_TCP, () => {}).count).toBe(4);
    k.faults = [undefined, ...Array(8).fill("eintr")] as Step[];
    expect(() => source.dump(AF_INET6, IPPROTO_TCP, () => {})).toThrow(SystemCallError);
    expect(source.dump(AF_INET6, IPPROTO_TCP, () => {}).count).toBe(4);
  });
});

describe("socket-destroy notices: ENOBUFS, short reads, EINTR", () => {
  const notice = (i: number) => {
    const m = withSeq(MESSAGES.get("2/6")![i % 3]!, 0);
    return m;
  };

  test("every notice around the faults is kept; each fault is counted, none throws", () => {
    const k = new FakeKernel();
    const reader = new DestroyEventReader("tcp", new NetlinkSocket(4, k));
    for (let i = 0; i < 6; i++) k.notify(notice(i));
    // notice, overflow, notice cut short, notice, interrupted, notice, notice, notice
    k.faults = [undefined, "enobufs", "short", undefined, "eintr", undefined] as Step[];
    const got = reader.drain();
    expect(got).toHaveLength(5);
    expect(reader.overflows).toBe(1);
    expect(reader.malformed).toBe(1);
    expect(k.queue).toHaveLength(0);
  });

  test("a long overflow storm is counted, not thrown, and the queue is still read", () => {
    const k = new FakeKernel();
    const reader = new DestroyEventReader("tcp", new NetlinkSocket(4, k));
    let kept = 0;
    let overflows = 0;
    for (let round = 0; round < 1000; round++) {
      k.notify(notice(round));
      k.notify(notice(round + 1));
      k.faults = round % 2 ? ["enobufs", "enobufs"] : ["short"];
      kept += reader.drain().length;
      overflows += round % 2 ? 2 : 0;
    }
    expect(reader.overflows).toBe(overflows);
    expect(reader.malformed).toBe(500);
    expect(kept).toBe(1500);
  });
});
