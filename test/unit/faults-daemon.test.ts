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
import type { ClosedSocketFeed, DestroyResult, Snapshot, SocketEngine } from "../../src/engine/types.ts";
import type { Endpoint } from "../../src/model/endpoint.ts";
import { ManualTimers } from "./helpers/manual-timers.ts";
import { endpoint as anEndpoint, namedProcess } from "../support/endpoints.ts";

/**
 * The daemon's time, moved by hand: the refresh loop's timers, the monotonic clock of its fault
 * counts and clock-jump checks, and the wall clock (Date.now) all advance only in advance(), so
 * every count below is exact however busy the machine is. Refreshes are due every 100 ms.
 */
class ManualTime extends ManualTimers {
  /** Added to the wall clock: a jump of the machine's clock. */
  wallOffset = 0;
  constructor(wallStart = 1_800_000_000_000) {
    super();
    vi.spyOn(Date, "now").mockImplementation(() => wallStart + this.now + this.wallOffset);
  }

  /** The daemon whose refreshes this time drives: each refresh's handling is awaited. */
  daemon: Daemon | null = null;

  /**
   * `n` refreshes, `before` called ahead of each; each refresh's events are handled (by rules in
   * their own processes) before the next is due.
   */
  async refreshes(n: number, before: (i: number) => void = () => {}): Promise<void> {
    for (let i = 0; i < n; i++) {
      before(i);
      this.advance(100);
      await this.daemon?.idle();
    }
  }
}

let nextCookie = 1000;
function endpoint(localPort: number, remotePort: number, name: string, pid = 4000 + localPort): Endpoint {
  return anEndpoint({
    localPort, remotePort, inode: 50_000 + localPort, rttMs: 0.1, cookie: String(nextCookie++),
    process: namedProcess(pid, name, { startTime: "2026-01-01T00:00:00.000Z" }), pids: [pid],
  });
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
  const time = new ManualTime();
  daemon = new Daemon({
    config,
    createEngine: () => engine,
    emit: (r) => records.push(...r),
    audit: new AuditLog(auditFile, () => {}),
    warn: (m) => warnings.push(m),
    watchRuleFiles: false,
    faultReportMs: 400,
    timers: time,
    clock: time.clock,
  });
  time.daemon = daemon;
  const audit = () => (fs.existsSync(auditFile) ? fs.readFileSync(auditFile, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)) : []);
  return { engine, warnings, records, audit, daemon, time };
}

const metric = (d: Daemon, line: RegExp) => {
  const m = d.metrics.render().split("\n").find((l) => line.test(l));
  return m ? Number(m.split(" ").at(-1)) : 0;
};

describe("the daemon under faults it cannot be shown from outside", () => {
  // Timeline (ManualTime): refreshes at 100, 200, ... ms; a fault goes on being told every 400 ms.
  test("a refresh that fails every time: one line, counts while it lasts, one line when it works again", async () => {
    const { engine, warnings, daemon: d, time } = setup();
    await d.start();
    engine.failing = "recv(netlink): EINTR";
    await time.refreshes(15);
    const failures = metric(d, /^sockwarden_refresh_errors_total /);
    expect(failures, "every one of the 15 refreshes (100..1500 ms) failed and was counted").toBe(15);
    engine.failing = null;
    // Closes go on as soon as the refreshes do.
    engine.add(endpoint(40001, 25, "curl"));
    await time.refreshes(1);
    expect(engine.destroyed.map((e) => e.localPort), "the first refresh that works again closes the SMTP connection").toEqual([40001]);
    const refresh = warnings.filter((w) => w.startsWith("refresh failed"));
    // The first at once; then one count every 400 ms (at 500, 900, 1300 ms); the end with the rest.
    expect(refresh, "15 failures are told in 5 lines, not one each").toEqual([
      "refresh failed: recv(netlink): EINTR",
      "refresh failed: 4 more times in the last 0.4 s, 5 in all: recv(netlink): EINTR",
      "refresh failed: 4 more times in the last 0.4 s, 9 in all: recv(netlink): EINTR",
      "refresh failed: 4 more times in the last 0.4 s, 13 in all: recv(netlink): EINTR",
      `refresh failed ${failures} times in 1.5 s (2 not told before); refreshes work again`,
    ]);
  });

  test("destroy notices lost again and again: a counter, and lines with counts", async () => {
    const { engine, warnings, daemon: d, time } = setup();
    await d.start();
    await time.refreshes(15, () => (engine.lost += 7));
    // Lost after the last refresh: stopping must still count them.
    engine.lost += 5;
    await d.stop(200);
    expect(metric(d, /^sockwarden_lost_notices_total /), "the counter holds every lost notice, those after the last refresh too").toBe(engine.lost);
    const lines = warnings.filter((w) => w.startsWith("socket-destroy notices lost"));
    // The first at once; counts at 500, 900, 1300 ms; what is left when the daemon stops.
    expect(lines.length, `15 losses are told in 5 lines, not one each: ${JSON.stringify(lines)}`).toBe(5);
    expect(lines[0]).toMatch(/^socket-destroy notices lost: .*ENOBUFS.* \(7 times\)$/);
    const counts = lines.map((l) => Number(/\((\d+) times\)$/.exec(l)?.[1] ?? /: (\d+) more times? in/.exec(l)?.[1] ?? 0));
    expect(counts, "every loss is in exactly one line's count").toEqual([7, 28, 28, 28, 19]);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(engine.lost);
  });

  test("the wall clock set back an hour: closes go on, none is rate-limited, each jump is told once", async () => {
    const { engine, warnings, audit, daemon: d, time } = setup((c) => {
      c.limits.perRule["smtp-guard"] = 30;
    });
    await d.start();
    let port = 41000;
    const add = () => {
      engine.add(endpoint(port++, 25, "curl"));
      engine.add(endpoint(port++, 25, "exim4"));
    };
    await time.refreshes(12, add);
    time.wallOffset = -3_600_000;
    await time.refreshes(12, add);
    time.wallOffset = -3_600_000 + 86_400_000;
    await time.refreshes(5, add);
    const closed = engine.destroyed.map((e) => e.process!.name);
    expect(closed, "each of the 29 refreshes closed its curl connection, across both jumps").toHaveLength(29);
    expect(new Set(closed), "exim4 is the mail server: never closed").toEqual(new Set(["curl"]));
    const lines = audit();
    expect(lines, "one audit line per close").toHaveLength(29);
    expect(lines.filter((l) => l.outcome !== "closed"), "no close was refused (rate-limited) after the clock went back").toEqual([]);
    expect(metric(d, /^sockwarden_clock_jumps_total /), "two jumps, each counted once").toBe(2);
    await d.stop(200);
    // The first jump's episode ends 400 ms later (quiet), so the second is told as a first line again.
    const jumps = warnings.filter((w) => w.startsWith("wall clock jumped"));
    expect(jumps, "each jump is one line").toHaveLength(2);
    expect(jumps[0]).toMatch(/^wall clock jumped: back by 3600 s; /);
    expect(jumps[1]).toMatch(/^wall clock jumped: forward by 86400 s; /);
  });

  test("a rule over its limit: each refusal audited and told as a warning; the limit's minute is the daemon's clock", async () => {
    const { engine, records, audit, daemon: d, time } = setup((c) => {
      c.interval = 20;
      c.limits.perRule["smtp-guard"] = 2;
    });
    await d.start();
    const refresh = async () => {
      time.advance(20_000);
      await d.idle();
    };
    for (const port of [43001, 43002, 43003]) engine.add(endpoint(port, 25, "curl"));
    await refresh();
    expect(engine.destroyed.map((e) => e.localPort), "two closes a minute, the third refused").toEqual([43001, 43002]);
    const refused = records.filter((r) => r.outcome === "rate-limited");
    expect(refused).toEqual([{
      time: expect.any(String), kind: "alert", severity: "warning", action: "close", outcome: "rate-limited",
      message: expect.stringMatching(/^rule smtp-guard reached its limit of 2 actions a minute: would have closed tcp \S+:43003 -> \S+:25 \(curl, pid 47003\) \(/),
      rule: "smtp-guard", endpoint: expect.objectContaining({ localPort: 43003 }), process: expect.objectContaining({ pid: 47003, name: "curl" }),
    }]);
    expect(audit().map((l) => [l.action, l.outcome, l.endpoint?.localPort])).toEqual([["close", "closed", 43001], ["close", "closed", 43002], ["close", "rate-limited", 43003]]);
    // 20 s after the first closes: still within their minute.
    engine.add(endpoint(43004, 25, "curl"));
    await refresh();
    await refresh();
    // 60 s after them: the minute is over by the daemon's clock, however little real time passed.
    engine.add(endpoint(43005, 25, "curl"));
    await refresh();
    expect(engine.destroyed.map((e) => e.localPort)).toEqual([43001, 43002, 43005]);
    expect(audit().map((l) => l.outcome)).toEqual(["closed", "closed", "rate-limited", "rate-limited", "closed"]);
    expect(metric(d, /^sockwarden_actions_total\{.*outcome="rate-limited"/)).toBe(2);
  });

  test("dry run: nothing is touched, every decision is audited and recorded as it would have been", async () => {
    const { engine, records, audit, daemon: d, time } = setup((c) => {
      c.dryRun = true;
    });
    await d.start();
    engine.add(endpoint(44001, 25, "curl"));
    await time.refreshes(1);
    expect(engine.destroyed).toEqual([]);
    expect(audit().map((l) => [l.action, l.outcome, l.requestedBy, l.endpoint?.localPort])).toEqual([["would-close", "dry-run", "smtp-guard", 44001]]);
    expect(records.filter((r) => r.kind === "action")).toEqual([{
      time: expect.any(String), kind: "action", action: "would-close", outcome: "dry-run",
      message: expect.stringMatching(/^would close tcp \S+:44001 -> \S+:25 \(curl, pid 48001\): /),
      rule: "smtp-guard", endpoint: expect.objectContaining({ localPort: 44001 }), process: expect.objectContaining({ name: "curl" }),
    }]);
  });

  test("a rule that fails on every event: the first failure, then counts; the other rules go on", async () => {
    const rule = path.join(dir, "always-fails.ts");
    fs.writeFileSync(rule, `import { defineRule } from "sockwarden";
export default defineRule({ name: "always-fails", on: ["opened"], handle(e) { throw new Error("cannot handle " + e.endpoint.localPort); } });
`);
    const { engine, records, audit, daemon: d, time } = setup((c) => {
      c.rules.sources = ["smtp-guard", rule];
      c.sandbox.maxFailures = 1_000_000;
    });
    await d.start();
    let port = 42000;
    await time.refreshes(12, () => {
      for (let j = 0; j < 10; j++) engine.add(endpoint(port++, 8080, "client"));
      engine.add(endpoint(port++, 25, "curl"));
    });
    await d.stop(200);
    const failures = metric(d, /^sockwarden_rule_errors_total\{rule="always-fails",kind="error"\} /);
    expect(failures, "12 refreshes of 11 new connections: every event fails once").toBe(132);
    const reports = records.filter((r) => r.kind === "report" && r.rule === "always-fails");
    expect(reports[0]!.count).toBeUndefined();
    expect(reports[0]!.message).toMatch(/^rule always-fails \(.*always-fails\.ts:2:\d+\): Error: cannot handle \d+ \[event \d+\]$/);
    expect(reports.slice(1).filter((r) => !/^rule always-fails failed: \d+ more times? in the last/.test(r.message)), "later reports are counts").toEqual([]);
    // The first at once; counts at 500 and 900 ms; what is left when the daemon stops.
    expect(reports.map((r) => r.count), "132 failures are told in 4 reports, every one in exactly one count").toEqual([undefined, 43, 44, 44]);
    // smtp-guard is not held up by its neighbour.
    expect(audit().map((l) => l.outcome)).toEqual(Array(12).fill("closed"));
  });

  test("quarantine after repeated failures comes after the count of them", async () => {
    const rule = path.join(dir, "always-fails.ts");
    fs.writeFileSync(rule, `import { defineRule } from "sockwarden";
export default defineRule({ name: "always-fails", on: ["opened"], handle() { throw new Error("no"); } });
`);
    const { engine, records, daemon: d, time } = setup((c) => {
      c.rules.sources = [rule];
    });
    await d.start();
    for (let i = 0; i < 20; i++) engine.add(endpoint(43000 + i, 8080, "client"));
    await time.refreshes(1);
    const reports = records.filter((r) => r.kind === "report");
    expect(reports.map((r) => [r.outcome, r.count]), "the refresh that sees the 20 connections: the first failure, the count of 4 more, then the quarantine").toEqual([["error", undefined], ["error", 4], ["quarantined", undefined]]);
    expect(reports[2]!.message).toMatch(/quarantined: failed 5 times within 60 s/);
  });
});
