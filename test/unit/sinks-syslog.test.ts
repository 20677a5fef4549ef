import { afterAll, describe, expect, test } from "vitest";
import dgram from "node:dgram";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { SyslogSink, parseNetworkTarget } from "../../src/outputs/syslog-sink.ts";
import { rfc5424, utf8Limited } from "../../src/outputs/syslog-format.ts";
import type { SinkRecord } from "../../src/outputs/sink-record.ts";
import { openUnixDatagram } from "../../src/engine/linux/unix-datagram.ts";
import { UnixDatagramReceiver } from "../support/unix-datagram-receiver.ts";
import { drain, waitFor } from "./helpers/waits.ts";
import { endpoint, namedProcess } from "../support/endpoints.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sw-sinks-syslog-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const proc = namedProcess(4242, "curl", { cmdline: "curl x" });
const alert = (n: number, extra: Partial<SinkRecord> = {}): SinkRecord => ({
  time: `2026-11-21T10:00:${String(n % 60).padStart(2, "0")}.250Z`,
  kind: "alert",
  rule: "smtp-guard",
  severity: "critical",
  message: `mail from a non-mail process #${n}`,
  process: proc,
  ...extra,
});

interface Parsed5424 {
  pri: number;
  time: string;
  host: string;
  app: string;
  procId: string;
  msgId: string;
  sdId: string;
  params: Record<string, string>;
  msg: string;
}

/** Parses one RFC 5424 message with one SD-ELEMENT (what the sink writes). */
function parse5424(line: string): Parsed5424 {
  const m = /^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) \[(\S+)((?: [^=\s\]"]+="(?:[^"\\\]]|\\["\\\]])*")*)\] (.*)$/s.exec(line);
  if (!m) throw new Error(`not RFC 5424: ${line}`);
  const params: Record<string, string> = {};
  for (const p of m[8]!.matchAll(/ ([^=\s]+)="((?:[^"\\\]]|\\["\\\]])*)"/g)) params[p[1]!] = p[2]!.replace(/\\(["\\\]])/g, "$1");
  return { pri: Number(m[1]), time: m[2]!, host: m[3]!, app: m[4]!, procId: m[5]!, msgId: m[6]!, sdId: m[7]!, params, msg: m[9]! };
}

describe("RFC 5424 format", () => {
  test("header, structured data with escapes, summary counts", () => {
    const r = alert(1, {
      message: 'quote " backslash \\ bracket ] and\nnewline',
      count: 12,
      firstTime: "2026-11-21T10:00:01.000Z",
      lastTime: "2026-11-21T10:00:09.500Z",
      endpoint: endpoint({
        family: 6, localAddress: "2001:db8::1", localPort: 43122, remoteAddress: "2001:db8::25", remotePort: 25, packetsSent: 0, packetsReceived: 0,
        cookie: "7", process: proc, pids: [4242],
      }),
    });
    const p = parse5424(rfc5424(r, { facility: "local3", hostname: "box one", appName: "sockwarden", procId: 77 }));
    expect(p).toMatchObject({ pri: 19 * 8 + 2, time: r.time, host: "boxone", app: "sockwarden", procId: "77", msgId: "alert", sdId: "sockwarden@32473" });
    expect(p.params).toMatchObject({
      kind: "alert", rule: "smtp-guard", severity: "critical", count: "12", firstTime: r.firstTime, lastTime: r.lastTime,
      pid: "4242", process: "curl", protocol: "tcp", localAddress: "2001:db8::1", remotePort: "25", state: "ESTABLISHED",
    });
    expect(p.msg).toContain('quote " backslash \\\\ bracket ] and\\x0anewline');
    expect(p.msg).toMatch(/x12 from 10:00:01.000Z to 10:00:09.500Z/);
    expect(p.msg).toContain("[2001:db8::1]:43122 -> [2001:db8::25]:25");
  });

  test("cutting to a byte limit never splits a character", () => {
    expect(utf8Limited("aé", 2).toString()).toBe("a");
    expect(utf8Limited("aé", 3).toString()).toBe("aé");
    expect(utf8Limited("€€", 5).toString()).toBe("€");
  });

  test("network targets", () => {
    expect(parseNetworkTarget("udp://127.0.0.1:514")).toEqual({ protocol: "udp", host: "127.0.0.1", port: 514 });
    expect(parseNetworkTarget("tcp://[::1]:6514")).toEqual({ protocol: "tcp", host: "::1", port: 6514 });
    expect(parseNetworkTarget("tcp://logs.example.net:601")).toEqual({ protocol: "tcp", host: "logs.example.net", port: 601 });
    for (const bad of ["udp://host", "http://h:1", "udp://h:0", "udp://h:70000", "tcp://::1:5"]) expect(parseNetworkTarget(bad)).toBeNull();
  });
});

describe("syslog over UDP", () => {
  test("one RFC 5424 datagram per record, with the facility and severities asked for", async () => {
    const server = dgram.createSocket("udp4");
    const got: string[] = [];
    server.on("message", (m) => got.push(m.toString()));
    await new Promise<void>((r) => server.bind(0, "127.0.0.1", r));
    const port = server.address().port;
    const sink = new SyslogSink({ target: `udp://127.0.0.1:${port}`, facility: "local0", hostname: "testhost" });
    expect(sink.name).toBe(`syslog:udp://127.0.0.1:${port}`);
    sink.write([alert(1), alert(2, { severity: "warning" })]);
    sink.write([{ time: "2026-11-21T10:00:03.000Z", kind: "log", message: "started", severity: "info" }]);
    await drain(sink, 15_000);
    await waitFor("3 datagrams", () => got.length === 3);
    const parsed = got.map(parse5424);
    expect(parsed.map((p) => p.pri)).toEqual([16 * 8 + 2, 16 * 8 + 4, 16 * 8 + 6]);
    expect(parsed.map((p) => p.msgId)).toEqual(["alert", "alert", "log"]);
    expect(parsed[0]).toMatchObject({ host: "testhost", app: "sockwarden", procId: String(process.pid) });
    expect(parsed[0]!.msg).toBe("alert critical smtp-guard: mail from a non-mail process #1 (pid 4242 curl)");
    expect(sink.stats()).toMatchObject({ written: 3, dropped: 0, failures: 0 });
    await sink.close(1000);
    server.close();
  });

  test("long messages are cut to maxMessageBytes", async () => {
    const server = dgram.createSocket("udp4");
    const got: Buffer[] = [];
    server.on("message", (m) => got.push(m));
    await new Promise<void>((r) => server.bind(0, "127.0.0.1", r));
    const sink = new SyslogSink({ target: `udp://127.0.0.1:${server.address().port}`, maxMessageBytes: 300 });
    sink.write([alert(1, { message: "x".repeat(5000) })]);
    await waitFor("a datagram", () => got.length === 1);
    expect(got[0]!.length).toBe(300);
    await sink.close(1000);
    server.close();
  });
});

describe("syslog over TCP", () => {
  /** A collector that splits RFC 6587 octet-counted frames. */
  function collector(port = 0) {
    const got: string[] = [];
    const sockets = new Set<net.Socket>();
    const server = net.createServer((s) => {
      sockets.add(s);
      let buf = Buffer.alloc(0);
      s.on("data", (d) => {
        buf = Buffer.concat([buf, Buffer.from(d)]);
        for (;;) {
          const sp = buf.indexOf(0x20);
          if (sp < 0) break;
          const len = Number(buf.subarray(0, sp).toString());
          if (!Number.isInteger(len) || len <= 0) throw new Error(`bad frame length: ${buf.subarray(0, sp)}`);
          if (buf.length < sp + 1 + len) break;
          got.push(buf.subarray(sp + 1, sp + 1 + len).toString());
          buf = buf.subarray(sp + 1 + len);
        }
      });
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {});
    });
    const listening = new Promise<number>((r) => server.listen(port, "127.0.0.1", () => r((server.address() as net.AddressInfo).port)));
    const stop = () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      });
    return { got, listening, stop };
  }

  test("octet-counted frames; after the collector goes away and comes back, every record arrives once, in order", async () => {
    const first = collector();
    const port = await first.listening;
    const told: string[] = [];
    const sink = new SyslogSink({
      target: `tcp://127.0.0.1:${port}`, hostname: "h", retry: { initialMs: 20, maxMs: 100 }, report: (_, m) => told.push(m),
    });
    sink.write([alert(1), alert(2, { message: "#2 with\nnewline" })]);
    sink.write([alert(3)]);
    await waitFor("3 frames", () => first.got.length === 3);
    expect(sink.connected, "the sink should hold a connection to the first collector").toBe(true);
    await first.stop();
    // Records written before the sink sees the connection end would go into a dying socket.
    await waitFor("the sink to see the first collector's connection end", () => !sink.connected);
    for (let i = 4; i <= 8; i++) sink.write([alert(i)]);
    await waitFor("a failed attempt", () => sink.stats().failures >= 1);
    expect(sink.stats().queued).toBe(5);
    const second = collector(port);
    await second.listening;
    await drain(sink, 15_000);
    await waitFor("5 more frames", () => second.got.length === 5);
    const numbers = [...first.got, ...second.got].map((l) => Number(/#(\d+)/.exec(parse5424(l).msg)![1]));
    expect(numbers).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(parse5424(first.got[1]!).msg).toContain("#2 with\\x0anewline");
    expect(sink.stats()).toMatchObject({ written: 8, queued: 0, dropped: 0, failures: 1 });
    expect(sink.stats().lastError).toMatch(/ECONNREFUSED|refused/i);
    expect(told).toHaveLength(1);
    await sink.close(1000);
    await second.stop();
  });

  test("closing while the collector is down counts what was not sent", async () => {
    const probe = collector();
    const port = await probe.listening;
    await probe.stop();
    const sink = new SyslogSink({ target: `tcp://127.0.0.1:${port}`, retry: { initialMs: 20, maxMs: 50 } });
    sink.write([alert(1), alert(2), alert(3)]);
    // A refusal not yet seen when close gives up would not count: wait for it, then close.
    await waitFor("the first refused connection", () => sink.stats().failures >= 1);
    await sink.close(150);
    expect(sink.stats()).toMatchObject({ written: 0, queued: 0, dropped: 3, failures: 1 });
  });
});

describe("syslog to a local socket", () => {
  test("the syslog(3) form by default, RFC 5424 on request, through a unix datagram socket", async () => {
    const socketPath = path.join(dir, "log.sock");
    const receiver = new UnixDatagramReceiver(socketPath);
    try {
      const sink = new SyslogSink({ target: "local", socketPath, openLocalDatagram: openUnixDatagram, facility: "auth" });
      expect(sink.name).toBe(`syslog:${socketPath}`);
      sink.write([alert(1), { time: "2026-11-21T10:00:03.000Z", kind: "action", action: "close", outcome: "closed", message: "closed it" }]);
      await drain(sink, 15_000);
      const got: string[] = [];
      await waitFor("2 datagrams", () => {
        const d = receiver.receive();
        if (d) got.push(d.toString());
        return got.length === 2;
      });
      // <PRI>Mmm dd hh:mm:ss TAG[PID]: MSG, the time in local time as syslog(3) writes it.
      const m = /^<(\d+)>([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) sockwarden\[(\d+)\]: (.*)$/.exec(got[0]!);
      expect(m).not.toBeNull();
      expect(Number(m![1])).toBe(4 * 8 + 2);
      expect(Number(m![3])).toBe(process.pid);
      expect(m![4]).toBe("alert critical smtp-guard: mail from a non-mail process #1 (pid 4242 curl)");
      expect(got[1]).toMatch(/^<37>.*: action close closed closed it$/);
      await sink.close(1000);

      const strict = new SyslogSink({ target: "local", socketPath, openLocalDatagram: openUnixDatagram, format: "rfc5424" });
      strict.write([alert(5)]);
      await drain(strict, 15_000);
      let d: Buffer | null = null;
      await waitFor("a datagram", () => (d = receiver.receive()) !== null);
      expect(parse5424(d!.toString())).toMatchObject({ pri: 3 * 8 + 2, msgId: "alert" });
      await strict.close(1000);
    } finally {
      receiver.close();
    }
  });

  test("a missing socket is one reported failure; records meanwhile are counted; sending resumes when it appears", async () => {
    const socketPath = path.join(dir, "later.sock");
    const told: string[] = [];
    const sink = new SyslogSink({ target: "local", socketPath, openLocalDatagram: openUnixDatagram, report: (_, m) => told.push(m) });
    for (let i = 0; i < 5; i++) {
      sink.write([alert(i), alert(i + 100)]);
      await drain(sink, 15_000);
    }
    expect(sink.stats()).toMatchObject({ written: 0, queued: 0, dropped: 10, failures: 1 });
    expect(sink.stats().lastError).toMatch(/no syslog daemon listens on .*later\.sock \(ENOENT\)/);
    expect(told).toHaveLength(1);
    const receiver = new UnixDatagramReceiver(socketPath);
    try {
      sink.write([alert(7)]);
      await drain(sink, 15_000);
      expect(sink.stats()).toMatchObject({ written: 1, dropped: 10, failures: 1 });
      expect(receiver.receive()?.toString()).toContain("#7");
    } finally {
      receiver.close();
      await sink.close(500);
    }
  });

  test("without an engine that offers local sockets, local syslog is a counted failure, not a crash", async () => {
    const sink = new SyslogSink({ target: "local" });
    sink.write([alert(1)]);
    await drain(sink, 15_000);
    expect(sink.stats()).toMatchObject({ written: 0, dropped: 1, failures: 1 });
    await sink.close(100);
  });
});
