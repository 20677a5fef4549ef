import { describe, expect, test } from "vitest";
import path from "node:path";
import fs from "node:fs";
import {
  AF_INET,
  AF_INET6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  INET_DIAG_REQ_V2_LEN,
  NLMSG_HDRLEN,
  NLM_F_DUMP,
  NLM_F_REQUEST,
  SOCK_DIAG_BY_FAMILY,
  cookieString,
  decodeMessages,
  encodeDiagRequest,
} from "../../src/engine/linux/sock-diag-codec.ts";
import { ReplayDiagSource } from "../../src/engine/linux/diag-source.ts";
import { dumpAll } from "../support/diag-dump.ts";
import { parseProcNet } from "../../src/engine/linux/proc-net.ts";
import { DecodeError } from "../../src/errors.ts";

const FIXTURES = path.join(import.meta.dirname, "../fixtures/netlink");
const RECORDING = path.join(FIXTURES, "dump-basic.ndjson");

function datagrams(): { family: number; protocol: number; data: Buffer }[] {
  return fs
    .readFileSync(RECORDING, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l))
    .map((d) => ({ ...d, data: Buffer.from(d.data, "base64") }));
}

describe("encodeDiagRequest", () => {
  test("lays out nlmsghdr and inet_diag_req_v2 as the kernel expects", () => {
    const buf = encodeDiagRequest({ family: AF_INET6, protocol: IPPROTO_UDP, states: 0xfff, extensions: 0x402, sequence: 7 });
    expect(buf.length).toBe(NLMSG_HDRLEN + INET_DIAG_REQ_V2_LEN);
    expect(buf.readUInt32LE(0)).toBe(72);
    expect(buf.readUInt16LE(4)).toBe(SOCK_DIAG_BY_FAMILY);
    expect(buf.readUInt16LE(6)).toBe(NLM_F_REQUEST | NLM_F_DUMP);
    expect(buf.readUInt32LE(8)).toBe(7);
    expect([buf[16], buf[17], buf[18]]).toEqual([AF_INET6, IPPROTO_UDP, 0x02]);
    expect(buf.readUInt32LE(20)).toBe(0xfff);
    // The socket id is all zeros for a dump.
    expect(buf.subarray(24).every((b) => b === 0)).toBe(true);
  });
});

describe("decodeMessages on a recorded dump", () => {
  const source = new ReplayDiagSource(RECORDING);
  const tcp4 = dumpAll(source, AF_INET, IPPROTO_TCP);
  const tcp6 = dumpAll(source, AF_INET6, IPPROTO_TCP);
  const udp4 = dumpAll(source, AF_INET, IPPROTO_UDP);
  const udp6 = dumpAll(source, AF_INET6, IPPROTO_UDP);

  test("finds every socket of the fixture", () => {
    expect([tcp4.length, tcp6.length, udp4.length, udp6.length]).toEqual([3, 4, 2, 1]);
    const inodes = [...tcp4, ...tcp6, ...udp4, ...udp6].map((r) => r.inode).sort();
    expect(inodes).toEqual(Array.from({ length: 10 }, (_, i) => 705932 + i));
  });

  test("decodes addresses, ports and states", () => {
    const listener = tcp4.find((r) => r.inode === 705932)!;
    expect(listener.source).toBe("127.0.0.1");
    expect(listener.sourcePort).toBe(7001);
    expect(listener.destinationPort).toBe(0);
    expect(listener.state).toBe(10); // LISTEN
    expect(listener.sendQueue).toBe(8); // a listener's send queue is its backlog
    const client6 = tcp6.find((r) => r.inode === 705936)!;
    expect(client6.source).toBe("::1");
    expect(client6.destination).toBe("::1");
    expect([client6.sourcePort, client6.destinationPort]).toEqual([8002, 7002]);
    expect(client6.state).toBe(1); // ESTABLISHED
    const v6only = tcp6.find((r) => r.inode === 705938)!;
    expect(v6only.source).toBe("::");
    expect(v6only.v6Only).toBe(true);
    const connectedUdp = udp4.find((r) => r.inode === 705941)!;
    expect([connectedUdp.sourcePort, connectedUdp.destinationPort, connectedUdp.state]).toEqual([7006, 7004, 1]);
  });

  test("decodes tcp_info counters", () => {
    const client = tcp4.find((r) => r.inode === 705933)!;
    expect(client.hasTcpInfo).toBe(true);
    expect(client.bytesSent).toBe(1000);
    // bytes_acked counts the SYN as one byte.
    expect(client.bytesAcked).toBe(1001);
    expect(client.bytesReceived).toBe(300);
    expect(client.segsOut).toBe(4);
    expect(client.segsIn).toBe(3);
    expect(client.rttMicros).toBeGreaterThan(0);
    expect(udp4[0]!.hasTcpInfo).toBe(false);
    expect(udp4[0]!.bytesSent).toBeNull();
  });

  test("keeps the socket cookie", () => {
    const listener = tcp4.find((r) => r.inode === 705932)!;
    expect(cookieString(listener.cookieLow, listener.cookieHigh)).toBe("114117");
    expect(cookieString(1, 2)).toBe(String(2n * 2n ** 32n + 1n));
    expect(cookieString(5, 0x7fffffff)).toBe(String(0x7fffffffn * 2n ** 32n + 5n));
  });
});

describe("decodeMessages rejects damaged input", () => {
  const whole = datagrams().find((d) => d.family === AF_INET && d.protocol === IPPROTO_TCP)!.data;

  test("a message cut short names the sizes", () => {
    const cut = whole.subarray(0, 100);
    expect(() => decodeMessages(cut)).toThrow(DecodeError);
    expect(() => decodeMessages(cut)).toThrow(/100 bytes came, \d+ were wanted/);
  });

  test("a length below the header size", () => {
    const bad = Buffer.from(whole.subarray(0, 32));
    bad.writeUInt32LE(8, 0);
    expect(() => decodeMessages(bad)).toThrow(/below the header/);
  });

  test("an inet_diag_msg shorter than its fixed part", () => {
    const bad = Buffer.alloc(NLMSG_HDRLEN + 40);
    bad.writeUInt32LE(bad.length, 0);
    bad.writeUInt16LE(SOCK_DIAG_BY_FAMILY, 4);
    expect(() => decodeMessages(bad)).toThrow(/inet_diag_msg is 40 bytes, 72 were wanted/);
  });

  test("an attribute that runs past its message", () => {
    const first = Buffer.from(whole.subarray(0, whole.readUInt32LE(0)));
    // First attribute follows the 16-byte header and the 72-byte inet_diag_msg.
    first.writeUInt16LE(0xfff0, NLMSG_HDRLEN + 72);
    expect(() => decodeMessages(first)).toThrow(/claims 65520 bytes/);
  });

  test("trailing bytes too short for a header", () => {
    const first = whole.subarray(0, whole.readUInt32LE(0));
    expect(() => decodeMessages(Buffer.concat([first, Buffer.alloc(8)]))).toThrow(/trailing bytes/);
  });

  test("error and done messages", () => {
    const err = Buffer.alloc(NLMSG_HDRLEN + 20);
    err.writeUInt32LE(err.length, 0);
    err.writeUInt16LE(2, 4);
    err.writeUInt32LE(9, 8);
    err.writeInt32LE(-1, 16);
    const done = Buffer.alloc(NLMSG_HDRLEN + 4);
    done.writeUInt32LE(done.length, 0);
    done.writeUInt16LE(3, 4);
    expect(decodeMessages(Buffer.concat([err, done]))).toEqual([
      { kind: "error", sequence: 9, flags: 0, errno: 1 },
      { kind: "done", sequence: 0, flags: 0 },
    ]);
  });
});

describe("/proc/net fallback parser", () => {
  const read = (name: string) => fs.readFileSync(path.join(FIXTURES, `proc-net-${name}.txt`), "utf8");

  test("gives the same sockets as the netlink dump of the same moment", () => {
    const source = new ReplayDiagSource(RECORDING);
    const key = (r: { state: number; inode: number; sourcePort: number; destinationPort: number; source: string; destination: string }, _fam: number) =>
      [r.inode, r.state, r.sourcePort, r.destinationPort, r.source, r.destination].join(" ");
    for (const [name, fam, proto] of [["tcp", AF_INET, IPPROTO_TCP], ["tcp6", AF_INET6, IPPROTO_TCP], ["udp", AF_INET, IPPROTO_UDP], ["udp6", AF_INET6, IPPROTO_UDP]] as const) {
      const fromProc = parseProcNet(read(name), fam).map((r) => key(r, fam)).sort();
      const fromNetlink = dumpAll(source, fam, proto).map((r) => key(r, fam)).sort();
      expect(fromProc, name).toEqual(fromNetlink);
    }
  });

  test("rejects malformed lines with file and line", () => {
    const header = read("tcp").split("\n")[0];
    expect(() => parseProcNet(`${header}\n   0: 0100007F 00000000:0000 0A\n`, AF_INET, "x")).toThrow(/x:2: 4 fields/);
    expect(() => parseProcNet(`${header}\n   0: 0100007:1B59 00000000:0000 0A 0:0 0:0 0 0 0 1\n`, AF_INET, "x")).toThrow(/malformed address/);
  });
});
