/**
 * The daemon in process over a fake engine, with faults injected where the system cannot make
 * them on demand: a refresh that fails every time (as an EINTR storm or a broken dump would),
 * destroy notices the kernel keeps dropping, the wall clock set back an hour, and a rule that
 * fails on every event. Each must leave the daemon running, the audit log complete, and be told
 * with a count rather than once per occurrence.
 */
import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Daemon, type DaemonRecord } from "../../src/daemon/daemon.ts";
import { defaultConfig, type DaemonConfig } from "../../src/daemon/config.ts";
import { AuditLog } from "../../src/actions/audit-log.ts";
import type { ClosedSocketFeed, DestroyResult, Endpoint, Snapshot, SocketEngine } from "../../src/engine/types.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let nextCookie = 1000;
function endpoint(localPort: number, remotePort: number, name: string, pid = 4000 + localPort): Endpoint {
  return {
    protocol: "tcp", family: 4, localAddress: "127.0.0.1", localPort, remoteAddress: "127.0.0.1", remotePort,
    state: "ESTABLISHED", inode: 50_000 + localPort, uid: 0, user: "root", interfaceIndex: 0, receiveQueue: 0, sendQueue: 0,
    bytesSent: 0, bytesReceived: 0, packetsSent: 1, packetsReceived: 1, rttMs: 0.1, cookie: String(nextCookie++),
    process: { pid, name, path: `/usr/bin/${name}`, cmdline: name, uid: 0, user: "root", startTime: "2026-01-01T00:00:00.000Z", ppid: 1 },
    pids: [pid],
  };
}

/** Sockets the test adds; closes remove them. Failures and lost notices on demand. */
class FakeEngine implements SocketEngine {
  readonly name = "fake";
  readonly sockets = new Map<string, Endpoint>();
  failing: string | null = null;
  lost = 0;
  destroyed: Endpoint[] = [];

  snapshot(): Snapshot {
    if (this.failing) throw new Error(this.failing);
    return { endpoints: [...this.sockets.values()], takenAt: Date.now(), source: "fake", notes: [], unreadableProcesses: 0 };
  }

  destroy(ep: Endpoint): DestroyResult {
    if (!this.sockets.delete(ep.cookie!)) return { outcome: "gone" };
    this.destroyed.push(ep);
    return { outcome: "closed" };
  }

  closedSockets(): ClosedSocketFeed {
    return { drain: () => [], lost: () => this.lost, close: () => {} };
  }

  add(ep: Endpoint): void {
    this.sockets.set(ep.cookie!, ep);
  }

  close(): void {}
}

let dir: string;
let daemon: Daemon | null = null;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "sw-faults-daemon-"));
});

afterEach(async () => {
  await daemon?.stop(200);
  daemon = null;
  vi.restoreAllMocks();
  fs.rmSync(dir, { recursive: true, force: true });
});

function setup(configure: (c: DaemonConfig) => void = () => {}) {
  const config = defaultConfig();
  config.interval = 0.1;
  config.rules.sources = ["smtp-guard"];
  config.limits.perRule["smtp-guard"] = 100_000;
  configure(config);
  const engine = new FakeEngine();
  const warnings: string[] = [];
  const records: DaemonRecord[] = [];
  const auditFile = path.join(dir, "audit.log");
  daemon = new Daemon({
    config,
    createEngine: () => engine,
    emit: (r) => records.push(...r),
    audit: new AuditLog(auditFile, () => {}),
    warn: (m) => warnings.push(m),
    watchRuleFiles: false,
    faultReportMs: 400,
  });
  const audit = () => (fs.existsSync(auditFile) ? fs.readFileSync(auditFile, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)) : []);
  return { engine, warnings, records, audit, daemon };
}

const metric = (d: Daemon, line: RegExp) => {
  const m = d.metrics.render().split("\n").find((l) => line.test(l));
  return m ? Number(m.split(" ").at(-1)) : 0;
};

describe("the daemon under faults it cannot be shown from outside", () => {
  test("a refresh that fails every time: one line, counts while it lasts, one line when it works again", async () => {
    const { engine, warnings, daemon: d } = setup();
    await d.start();
    engine.failing = "recv(netlink): EINTR";
    await sleep(1500);
    const failures = metric(d, /^sockwarden_refresh_errors_total /);
    expect(failures).toBeGreaterThanOrEqual(8);
    engine.failing = null;
    // Closes go on as soon as the refreshes do.
    engine.add(endpoint(40001, 25, "curl"));
    await sleep(400);
    expect(engine.destroyed.map((e) => e.localPort)).toEqual([40001]);
    const refresh = warnings.filter((w) => w.startsWith("refresh failed"));
    expect(refresh[0]).toBe("refresh failed: recv(netlink): EINTR");
    expect(refresh.length).toBeLessThanOrEqual(7);
    expect(refresh.length).toBeLessThan(failures / 2);
    const last = refresh.at(-1)!;
    expect(last).toMatch(new RegExp(`^refresh failed ${failures} times in [\\d.]+ s( \\(\\d+ not told before\\))?; refreshes work again$`));
  });

  test("destroy notices lost again and again: a counter, and lines with counts", async () => {
    const { engine, warnings, daemon: d } = setup();
    await d.start();
    for (let i = 0; i < 15; i++) {
      engine.lost += 7;
      await sleep(100);
    }
    await d.stop(200);
    expect(metric(d, /^sockwarden_lost_notices_total /)).toBe(engine.lost);
    const lines = warnings.filter((w) => w.startsWith("socket-destroy notices lost"));
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(lines.length).toBeLessThanOrEqual(6);
    expect(lines[0]).toMatch(/^socket-destroy notices lost: .*ENOBUFS.* \(\d+ times\)$/);
    // Every loss is in one line's count.
    const counted = lines.reduce((n, l) => n + Number(/\((\d+) times\)$/.exec(l)?.[1] ?? /: (\d+) more times? in/.exec(l)?.[1] ?? 0), 0);
    expect(counted).toBe(engine.lost);
  });

  test("the wall clock set back an hour: closes go on, none is rate-limited, each jump is told once", async () => {
    const realNow = Date.now.bind(Date);
    let offset = 0;
    vi.spyOn(Date, "now").mockImplementation(() => realNow() + offset);
    const { engine, warnings, audit, daemon: d } = setup((c) => {
      c.limits.perRule["smtp-guard"] = 30;
    });
    await d.start();
    let port = 41000;
    const add = async (n: number) => {
      for (let i = 0; i < n; i++) {
        engine.add(endpoint(port++, 25, "curl"));
        engine.add(endpoint(port++, 25, "exim4"));
        await sleep(60);
      }
    };
    await add(12);
    offset = -3_600_000;
    await add(12);
    offset = -3_600_000 + 86_400_000;
    await add(5);
    await sleep(300);
    const closed = engine.destroyed.map((e) => e.process!.name);
    expect(closed).toHaveLength(29);
    expect(new Set(closed)).toEqual(new Set(["curl"]));
    const lines = audit();
    expect(lines).toHaveLength(29);
    expect(lines.every((l) => l.outcome === "closed")).toBe(true);
    expect(metric(d, /^sockwarden_clock_jumps_total /)).toBe(2);
    await d.stop(200);
    // Each jump is one line (the second alone, or as the count of an episode still open).
    const jumps = warnings.filter((w) => w.startsWith("wall clock jumped"));
    expect(jumps).toHaveLength(2);
    expect(jumps[0]).toMatch(/^wall clock jumped: back by 3600 s; /);
    expect(jumps[1]).toMatch(/^wall clock jumped: (1 more time in the last [\d.]+ s, 2 in all: )?forward by 86400 s; /);
  });

  test("a rule that fails on every event: the first failure, then counts; the other rules go on", async () => {
    const rule = path.join(dir, "always-fails.ts");
    fs.writeFileSync(rule, `import { defineRule } from "sockwarden";
export default defineRule({ name: "always-fails", on: ["opened"], handle(e) { throw new Error("cannot handle " + e.endpoint.localPort); } });
`);
    const { engine, records, audit, daemon: d } = setup((c) => {
      c.rules.sources = ["smtp-guard", rule];
      c.sandbox.maxFailures = 1_000_000;
    });
    await d.start();
    let port = 42000;
    for (let i = 0; i < 12; i++) {
      for (let j = 0; j < 10; j++) engine.add(endpoint(port++, 8080, "client"));
      engine.add(endpoint(port++, 25, "curl"));
      await sleep(110);
    }
    await sleep(200);
    await d.stop(200);
    const failures = metric(d, /^sockwarden_rule_errors_total\{rule="always-fails",kind="error"\} /);
    expect(failures).toBe(132);
    const reports = records.filter((r) => r.kind === "report" && r.rule === "always-fails");
    expect(reports.length).toBeLessThanOrEqual(8);
    expect(reports[0]!.count).toBeUndefined();
    expect(reports[0]!.message).toMatch(/^rule always-fails \(.*always-fails\.ts:2:\d+\): Error: cannot handle \d+ \[event \d+\]$/);
    expect(reports.slice(1).every((r) => (r.count ?? 0) > 0 && /^rule always-fails failed: \d+ more times? in the last/.test(r.message))).toBe(true);
    expect(reports.reduce((n, r) => n + (r.count ?? 1), 0)).toBe(failures);
    // smtp-guard is not held up by its neighbour.
    expect(audit().map((l) => l.outcome)).toEqual(Array(12).fill("closed"));
  });

  test("quarantine after repeated failures comes after the count of them", async () => {
    const rule = path.join(dir, "always-fails.ts");
    fs.writeFileSync(rule, `import { defineRule } from "sockwarden";
export default defineRule({ name: "always-fails", on: ["opened"], handle() { throw new Error("no"); } });
`);
    const { engine, records, daemon: d } = setup((c) => {
      c.rules.sources = [rule];
    });
    await d.start();
    for (let i = 0; i < 20; i++) engine.add(endpoint(43000 + i, 8080, "client"));
    await sleep(400);
    const reports = records.filter((r) => r.kind === "report");
    expect(reports.map((r) => [r.outcome, r.count])).toEqual([["error", undefined], ["error", 4], ["quarantined", undefined]]);
    expect(reports[2]!.message).toMatch(/quarantined: failed 5 times within 60 s/);
  });
});
