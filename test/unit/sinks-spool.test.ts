/**
 * The spool of the network sinks: records not delivered when a sink closes are kept on disk and
 * go out first, in order, when a sink of the same target is made again; the byte bound drops
 * the oldest (counted); a line cut short or garbage is skipped and counted; one owner per
 * directory. Real HTTP and TCP receivers on 127.0.0.1, real files.
 */
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { WebhookSink } from "../../src/outputs/webhook-sink.ts";
import { SyslogSink } from "../../src/outputs/syslog-sink.ts";
import { createSink, parseSinkSpec } from "../../src/outputs/sink-spec.ts";
import { spoolDir } from "../../src/outputs/sink-spool.ts";
import type { SinkRecord } from "../../src/outputs/sink-record.ts";
import { FileError } from "../../src/errors.ts";
import { createOutputs } from "../../src/daemon/outputs.ts";
import { Metrics } from "../../src/daemon/metrics.ts";
import { ConfigError, parseConfig } from "../../src/daemon/config.ts";
import { waitFor } from "./helpers/waits.ts";

const rec = (n: number): SinkRecord => ({ time: new Date(1_800_000_000_000 + n).toISOString(), kind: "alert", rule: "r", severity: "warning", message: `#${n}` });
const numbers = (records: SinkRecord[]) => records.map((r) => Number(r.message.slice(1)));
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const fast = { initialMs: 20, maxMs: 100 };

function receiver(port: number) {
  const received: SinkRecord[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port,
    async fetch(req) {
      received.push(...((await req.json()) as SinkRecord[]));
      return new Response("ok");
    },
  });
  return { port: server.port!, received, stop: () => server.stop(true) };
}

function freePort(): number {
  const probe = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") });
  const port = probe.port!;
  probe.stop(true);
  return port;
}

/** RFC 6587 octet-counted frames ("LEN SP MSG") of a TCP syslog stream. */
function framed(text: string): string[] {
  const out: string[] = [];
  for (let at = 0; at < text.length; ) {
    const space = text.indexOf(" ", at);
    if (space < 0) break;
    const len = Number(text.slice(at, space));
    if (space + 1 + len > text.length) break;
    out.push(text.slice(space + 1, space + 1 + len));
    at = space + 1 + len;
  }
  return out;
}

let stateDir: string;
const told: string[] = [];
const report = (sink: string, m: string) => told.push(`${sink}: ${m}`);

beforeEach(() => {
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "sw-spool-"));
  told.length = 0;
});
afterEach(() => fs.rmSync(stateDir, { recursive: true, force: true }));

function webhook(port: number, extra: Partial<ConstructorParameters<typeof WebhookSink>[0]> = {}) {
  const url = `http://127.0.0.1:${port}/hook`;
  return new WebhookSink({ url, backoff: fast, report, note: report, spool: { stateDir, target: `webhook:${url}` }, ...extra });
}

describe("spool", () => {
  test("receiver down at close: the records stay on disk (0600, dir 0700) and go first, in order, after a restart", async () => {
    const port = freePort();
    const first = webhook(port);
    first.write(range(1, 50).map(rec));
    await first.close(200);
    expect(first.stats().dropped).toBe(0);
    expect(first.stats().spool).toMatchObject({ kept: 50 });
    expect(told.some((l) => /50 record\(s\) not delivered before closing: kept in/.test(l))).toBe(true);
    const dir = spoolDir({ stateDir, target: `webhook:http://127.0.0.1:${port}/hook` }, first.name);
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
    const files = fs.readdirSync(dir).filter((f) => f.endsWith(".ndjson"));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expect(fs.statSync(path.join(dir, f)).mode & 0o777).toBe(0o600);
    expect(fs.existsSync(path.join(dir, "lock"))).toBe(false);

    const hook = receiver(port);
    const second = webhook(port);
    second.write([rec(51), rec(52)]);
    await waitFor("hook.received.length >= 52", () => hook.received.length >= 52);
    expect(numbers(hook.received)).toEqual(range(1, 52));
    expect(second.stats().spool).toMatchObject({ restored: 50, torn: 0 });
    await second.close(1000);
    hook.stop();
    // All delivered: nothing is left for a third start.
    expect(fs.readdirSync(dir).filter((f) => f.endsWith(".ndjson"))).toEqual([]);
  });

  test("a batch in flight at close (receiver accepts and never answers) is kept too", async () => {
    const sockets: net.Socket[] = [];
    const server = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as net.AddressInfo).port;
    const first = webhook(port, { batchSize: 5, timeoutMs: 60_000 });
    first.write(range(1, 12).map(rec));
    await first.close(200);
    expect(first.stats().spool!.kept).toBe(12);
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
    const hook = receiver(port);
    const second = webhook(port);
    await waitFor("hook.received.length >= 12", () => hook.received.length >= 12);
    expect(numbers(hook.received)).toEqual(range(1, 12));
    await second.close(1000);
    hook.stop();
  });

  test("full: the oldest are dropped and counted (told once); the newest survive the restart", async () => {
    const port = freePort();
    const big = (n: number): SinkRecord => ({ ...rec(n), message: `#${n} ${"x".repeat(2000)}` });
    const first = webhook(port, { queueBytes: 64 * 1024, batchSize: 1 });
    for (let n = 1; n <= 200; n++) first.write([big(n)]);
    const s = first.stats();
    expect(s.droppedBy.overflow).toBeGreaterThan(100);
    expect(told.filter((l) => /queue full/.test(l))).toHaveLength(1);
    await first.close(100);
    const kept = first.stats().spool!.kept;
    expect(kept + first.stats().dropped).toBe(200);
    const dir = spoolDir({ stateDir, target: `webhook:http://127.0.0.1:${port}/hook` }, first.name);
    const onDisk = fs.readdirSync(dir).filter((f) => f.endsWith(".ndjson")).reduce((sum, f) => sum + fs.statSync(path.join(dir, f)).size, 0);
    // The files hold what the queue held, plus at most one segment of lines already let go.
    expect(onDisk).toBeLessThanOrEqual(64 * 1024 + 2 * 16 * 1024);

    const hook = receiver(port);
    const second = webhook(port, { queueBytes: 64 * 1024 });
    await waitFor("hook.received.length >= kept", () => hook.received.length >= kept);
    const got = hook.received.map((r) => Number(r.message.split(" ")[0]!.slice(1)));
    // The first one left is in flight at close: it and the newest ones.
    expect(got.slice(-kept + 1)).toEqual(range(200 - kept + 2, 200));
    await second.close(1000);
    hook.stop();
  });

  test("a spool that cannot be written any more is told once, and what is left at close is counted as dropped, not kept", async () => {
    const port = freePort();
    const sink = webhook(port, { queueBytes: 64 * 1024 });
    const dir = spoolDir({ stateDir, target: `webhook:http://127.0.0.1:${port}/hook` }, sink.name);
    sink.write([rec(1)]);
    fs.rmSync(dir, { recursive: true });
    // Enough to need a new segment file in the directory that is gone.
    for (let n = 2; n <= 40; n++) sink.write([{ ...rec(n), message: `#${n} ${"y".repeat(1000)}` }]);
    expect(told.filter((l) => /cannot write the spool in .*ENOENT.*records are held in memory only/.test(l))).toHaveLength(1);
    await sink.close(100);
    const s = sink.stats();
    expect(s.droppedBy.closing).toBeGreaterThan(0);
    expect(s.droppedBy.closing + s.droppedBy.overflow).toBe(40);
    expect(sink.stats().spool!.kept).toBe(0);
    expect(told.some((l) => /kept in/.test(l))).toBe(false);
  });

  test("a torn last line and a garbage line are skipped and counted; the rest is delivered", async () => {
    const port = freePort();
    const first = webhook(port);
    first.write(range(1, 5).map(rec));
    await first.close(100);
    const dir = spoolDir({ stateDir, target: `webhook:http://127.0.0.1:${port}/hook` }, first.name);
    const file = path.join(dir, fs.readdirSync(dir).find((f) => f.endsWith(".ndjson"))!);
    const lines = fs.readFileSync(file, "utf8").split("\n").filter(Boolean);
    lines.splice(2, 0, "{not json", JSON.stringify({ kind: "alert" }));
    fs.writeFileSync(file, `${lines.join("\n")}\n${JSON.stringify(rec(6)).slice(0, 20)}`);

    told.length = 0;
    const hook = receiver(port);
    const second = webhook(port);
    await waitFor("hook.received.length >= 5", () => hook.received.length >= 5);
    expect(numbers(hook.received)).toEqual(range(1, 5));
    expect(second.stats().spool).toMatchObject({ restored: 5, torn: 3 });
    expect(told.filter((l) => /3 line\(s\) of the spool .* cut short or unreadable: skipped/.test(l))).toHaveLength(1);
    await second.close(1000);
    hook.stop();
  });

  test("one owner per directory: another live owner is refused in one line; a dead one's lock is taken over", async () => {
    const port = freePort();
    const url = `http://127.0.0.1:${port}/hook`;
    const name = `webhook:${url}`;
    const dir = spoolDir({ stateDir, target: name }, name);
    fs.mkdirSync(dir, { recursive: true });
    // PID 1 is alive and is not this process.
    fs.writeFileSync(path.join(dir, "lock"), "1 \n");
    expect(() => webhook(port)).toThrow(FileError);
    expect(() => webhook(port)).toThrow(/spool of webhook:http:\/\/127\.0\.0\.1:\d+\/hook is in use by another sockwarden \(PID 1\)/);
    // A PID that no process has.
    fs.writeFileSync(path.join(dir, "lock"), "4194303 1\n");
    const sink = webhook(port);
    await sink.close(50);
  });

  test("the daemon's outputs: the state directory made 0700, and the spool in the metrics after a restart", async () => {
    const port = freePort();
    const state = path.join(stateDir, "new", "state");
    const specs = [`webhook:http://127.0.0.1:${port}/hook#backoffMs=20&maxBackoffMs=50`];
    const warned: string[] = [];
    const first = createOutputs(specs, { warn: (m) => warned.push(m), stateDir: state });
    expect(fs.statSync(state).mode & 0o777).toBe(0o700);
    first.write(range(1, 7).map(rec));
    await first.close(300);
    const second = createOutputs(specs, { warn: (m) => warned.push(m), stateDir: state });
    const metrics = new Metrics();
    second.describe(metrics);
    const text = metrics.render();
    const sink = `webhook:http://127.0.0.1:${port}/hook`;
    expect(text).toContain(`sockwarden_sink_spool_restored_total{sink="${sink}"} 7`);
    expect(text).toContain(`sockwarden_sink_spool_torn_total{sink="${sink}"} 0`);
    expect(text).toMatch(new RegExp(`sockwarden_sink_spool_bytes\\{sink="${sink.replace(/[./]/g, "\\$&")}"\\} [1-9]\\d*`));
    expect(warned.some((l) => l.includes("7 record(s) kept in") && l.includes("from before go out first"))).toBe(true);
    await second.close(300);
  });

  test("state_dir in the configuration: a path, or one line naming the file, line and key", () => {
    expect(parseConfig('state_dir = "/srv/sockwarden"\n', "c.toml").stateDir).toBe("/srv/sockwarden");
    expect(parseConfig("interval = 1\n", "c.toml").stateDir).toBeNull();
    expect(() => parseConfig("interval = 1\nstate_dir = 5\n", "c.toml")).toThrow(ConfigError);
    expect(() => parseConfig("interval = 1\nstate_dir = 5\n", "c.toml")).toThrow(/^c\.toml:2: state_dir: must be a directory path$/);
  });

  test("a state directory that cannot be made is refused with one line naming it", () => {
    const blocker = path.join(stateDir, "file");
    fs.writeFileSync(blocker, "");
    const err = (() => {
      try {
        createSink(parseSinkSpec("webhook:http://127.0.0.1:9/hook"), { stateDir: path.join(blocker, "state"), report });
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(FileError);
    expect((err as Error).message).toMatch(/the state directory cannot be used \(.*ENOTDIR.*\); give a writable --state-dir$/);
    expect((err as Error).message).not.toMatch(/\n/);
  });

  test("syslog over TCP: what the collector did not take goes first after a restart", async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const target = `tcp://127.0.0.1:${port}`;
    const make = () => new SyslogSink({ target, report, note: report, retry: fast, spool: { stateDir, target: `syslog:${target}` } });
    const first = make();
    first.write(range(1, 20).map(rec));
    await first.close(200);
    expect(first.stats().spool!.kept).toBe(20);

    let text = "";
    const collector = net.createServer((s) => s.on("data", (d) => (text += d.toString())));
    await new Promise<void>((r) => collector.listen(port, "127.0.0.1", r));
    const second = make();
    await waitFor("20 syslog messages", () => framed(text).length >= 20);
    expect(framed(text).map((m) => Number(/#(\d+)$/.exec(m)![1]))).toEqual(range(1, 20));
    await second.close(1000);
    await new Promise<void>((r) => collector.close(() => r()));
  });

  test("a sink made again while its predecessor still closes waits for it, and starts with what it left", async () => {
    const port = freePort();
    const first = webhook(port);
    first.write(range(1, 10).map(rec));
    const second = webhook(port);
    second.write([rec(11)]);
    await first.close(100);
    const hook = receiver(port);
    await waitFor("hook.received.length >= 11", () => hook.received.length >= 11);
    expect(numbers(hook.received)).toEqual(range(1, 11));
    await second.close(1000);
    hook.stop();
  });
});
