/**
 * Faults made for real around `sockwarden run` with every bundled plugin, in a private network
 * namespace with live traffic (test/support/traffic/traffic.py soak: connections smtp-guard must
 * close, look-alikes it must not): the destroy-notice queue overflowing (the daemon is stopped
 * while short connections pour in), processes exiting in the middle of /proc scans, a webhook
 * nobody listens for, a full disk under the file sink (a tiny tmpfs in a mount namespace of the
 * daemon's own), a syslog socket that does not exist, a rule that fails on every event, and
 * storms of SIGHUPs (also while starting). In each the daemon stays up and stops cleanly, every
 * close is in the audit log once, none is missed or wrong, and the fault is told with a count,
 * in a bounded number of lines, however often it happens.
 *
 * Faults the system cannot make on demand (EINTR, short reads, a wall-clock jump) are injected in
 * process: test/unit/faults-*.test.ts. Needs root and a built dist/sockwarden.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Netns, requireRoot } from "./helpers/netns.ts";
import { EXECUTABLE, requireExecutable } from "./helpers/sockwarden.ts";
import { runSoak, scrapeMetrics, soakConfig, type SoakResult, type SoakSettings } from "../support/soak/soak-run.ts";
import { metricSum } from "../support/soak/soak-analyse.ts";
import { SoakProcess, sleep } from "../support/soak/soak-proc.ts";
import { waitForSignalHandler } from "./helpers/process-ready.ts";
import { waitFor } from "./helpers/wait-for.ts";

let ns: Netns | undefined;
let root: string;
let runs = 0;

beforeAll(async () => {
  requireRoot();
  requireExecutable();
  ns = await Netns.create("faults");
  root = fs.mkdtempSync(path.join(os.tmpdir(), "sw-faults-"));
});

afterAll(async () => {
  await ns?.dispose();
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

type Run = SoakResult & { dir: string };

/**
 * Seconds of traffic in each run: enough for every fault to happen many times over (each
 * threshold below is a small share of what one run makes) while the runs stay short.
 */
const SECONDS = 5;

/**
 * A short soak with a fault. `settings` gets the run's directory. Every run checks what no fault
 * may touch: the daemon up and stopping cleanly, no close missed or wrong, the audit log whole.
 */
async function withFault(name: string, settings: (dir: string) => Partial<SoakSettings>): Promise<Run> {
  const dir = path.join(root, `${++runs}-${name}`);
  fs.mkdirSync(dir);
  const r = await runSoak({
    executable: EXECUTABLE,
    seconds: SECONDS,
    warmupSeconds: 0,
    rate: 200,
    interval: 0.5,
    classRate: 3,
    hold: 1.5,
    closeDeadline: 10,
    churnClose: "rst",
    sampleSeconds: 1,
    metricsSeconds: 2,
    dir,
    wrap: (argv) => ns!.wrap(argv),
    metricsPort: 9464 + runs,
    ...settings(dir),
  });
  const c = r.closes;
  const why = `stderr:\n${r.stderr.slice(-3000)}\nmissed: ${c.missedExamples.join("; ")}\nwrong: ${c.wrongExamples.join("; ")}`;
  expect(r.daemon.stayedUp, why).toBe(true);
  // How soon it stops is bound by the supervisor's stop deadline, checked on fake time in
  // test/unit/supervisor.test.ts ("a stop whose outputs never let go ends at the deadline").
  expect(r.daemon.exitCode, why).toBe(0);
  expect(c.mustClose, why).toBeGreaterThan(20);
  // Connections closed in connect() are among the closed; any other that could not be made (a
  // look-alike above all) is a failure.
  expect(c.connectFailed, `${why}\nconnect failures: ${c.connectFailedExamples.join("; ")}`).toBe(0);
  expect(c.missed, why).toBe(0);
  expect(c.wrong, why).toBe(0);
  expect(c.wrongObserved, why).toBe(0);
  // The audit log lost nothing: each close the clients saw is in it, once.
  expect(c.unaudited, why).toBe(0);
  expect(c.duplicateAudit, why).toBe(0);
  expect(c.auditByOutcome["close closed"], why).toBe(c.closed);
  return { ...r, dir };
}

/** The daemon's stderr lines that contain `text`. */
const linesWith = (r: SoakResult, text: string) => r.stderr.split("\n").filter((l) => l.includes(text));
/** Lines at start that are not faults: the rules running, and where the sensor read its layout. */
const startLine = (l: string) => l.startsWith("sockwarden: running ") || l.startsWith("sockwarden: mounted tracefs ");
/**
 * Signals a reload folds on average, at least, in a storm of one every few milliseconds: a
 * reload takes tens to hundreds of them. One reload per signal, or per two, is a backlog.
 */
const MIN_FOLD = 4;
const reloadLines = (stderr: string) => stderr.split("\n").filter((l) => l.includes("sockwarden: reloaded"));
/** The SIGHUPs reload lines account for: "(N SIGHUPs)" each, or one. */
const signalsTold = (reloads: readonly string[]) => reloads.reduce((n, l) => n + Number(/\((\d+) SIGHUPs\)/.exec(l)?.[1] ?? 1), 0);
const metric = (r: SoakResult, name: string, ...labels: string[]) => metricSum(new Map(Object.entries(r.finalMetrics)), name, ...labels);
/** "N in all" of the last count line. */
const inAll = (lines: string[]) => Number(/, (\d+) in all/.exec(lines.filter((l) => / in all/.test(l)).at(-1) ?? "")?.[1] ?? NaN);
const readLines = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, "utf8").split("\n").filter(Boolean) : []);
/**
 * Notices the kernel dropped, for want of room, on the daemon's netlink sockets that listen to a
 * multicast group: its destroy-notice socket (/proc/PID/net is the namespace the daemon is in).
 */
function noticesDropped(pid: number): number {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const socket = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (socket) inodes.add(socket[1]!);
    } catch {
      // Closed while being listed.
    }
  }
  let drops = 0;
  // sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
  for (const line of fs.readFileSync(`/proc/${pid}/net/netlink`, "utf8").split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 10 && !/^0+$/.test(f[3]!) && inodes.has(f[9]!)) drops += Number(f[8]);
  }
  return drops;
}

/**
 * Records of a file sink across its rotated files, without those that tell it about the other
 * sinks (outcome sink-problem, sink-dropped): the records every sink was given.
 */
const sinkLines = (dir: string, base = "sink.ndjson") =>
  fs.readdirSync(dir).filter((f) => f === base || f.startsWith(`${base}.`)).flatMap((f) => readLines(path.join(dir, f)))
    .filter((l) => !/"outcome":"sink-(problem|dropped)"/.test(l));

// Each run is a start, SECONDS of traffic (more while a fault is being made), a drain and a stop:
// on a loaded machine more than the suite's default test time, and a run cut off by vitest would
// go on beside the next.
describe("sockwarden run under faults", { timeout: 240_000 }, () => {
  it("ENOBUFS on the destroy-notice socket: notices pour in while the daemon cannot read them", async () => {
    const r = await withFault("enobufs", () => ({
      rate: 1500,
      // Snapshots only: then the notices are the one record of connections shorter than a
      // refresh, which is what losing them is about. With the sensor, the same stall is a test
      // of the sensor's ring and of the backlog it leaves, not of this socket.
      daemonWrap: (argv) => [...argv, "--sensor", "poll"],
      // Two overflows, one after the other: the first is told, the second counted.
      during: async ({ daemon, scrape }) => {
        for (let overflow = 1; overflow <= 2; overflow++) {
          const before = noticesDropped(daemon.pid);
          // Stopped, it reads nothing while the short connections' notices fill its socket, until
          // the kernel has had to drop some.
          daemon.kill("SIGSTOP");
          try {
            await waitFor(() => `the kernel to drop destroy notices (${before} dropped before the stop)`, () => (noticesDropped(daemon.pid) > before ? true : undefined));
          } finally {
            daemon.kill("SIGCONT");
          }
          // Running again, it reads the overflow (ENOBUFS) and empties its queue before the next.
          const counted = async () => metricSum((await scrape()) ?? new Map(), "sockwarden_lost_notices_total") >= overflow || undefined;
          await waitFor(() => `the daemon to count overflow ${overflow}`, counted);
        }
      },
    }));
    const lost = metric(r, "sockwarden_lost_notices_total");
    expect(lost, r.stderr).toBeGreaterThan(0);
    const lines = linesWith(r, "socket-destroy notices lost");
    expect(lines[0]).toMatch(/^sockwarden: socket-destroy notices lost: the kernel's queue of notices overflowed \(ENOBUFS\)/);
    expect(lines.length).toBeLessThanOrEqual(4);
    // Every loss is in the count of one line.
    const counted = lines.reduce((n, l) => n + Number(/\((\d+) times\)$/.exec(l)?.[1] ?? /: (\d+) more times? in/.exec(l)?.[1] ?? 1), 0);
    expect(counted).toBeGreaterThanOrEqual(lost);
  });

  it("processes exiting in the middle of /proc scans: nothing fails and nothing is said", async () => {
    const r = await withFault("exits", () => ({ traffic: { forkRate: 250 } }));
    expect(metric(r, "sockwarden_refresh_errors_total")).toBe(0);
    // Only the start lines (with the sensor, also where it read the tracepoint's layout); a loaded
    // host may also lose destroy notices, a fault of its own (counted and told once, as the ENOBUFS
    // case checks), not of the scans.
    const said = r.stderr.split("\n").filter((l) => l && !startLine(l) && !l.includes("socket-destroy notices lost"));
    expect(said, r.stderr).toEqual([]);
    expect(linesWith(r, "sockwarden: running ")).toHaveLength(1);
    // Told once, then in counts (a run this short has at most the first line and the count at stop).
    expect(linesWith(r, "socket-destroy notices lost").length, r.stderr).toBeLessThanOrEqual(2);
    // The short-lived processes were seen, and their listeners told by new-listener.
    expect(metric(r, "sockwarden_events_total", 'type="opened"')).toBeGreaterThan(1000);
    expect(r.alerts["new-listener"] ?? 0).toBeGreaterThan(10);
  });

  it("a webhook that is down: the failure told once, the records it dropped counted, the file sink whole", async () => {
    const hook = "webhook:http://127.0.0.1:7999/hook";
    const r = await withFault("webhook", (dir) => ({
      sinks: [`${hook}#queueSize=10&backoffMs=100&maxBackoffMs=300`, `file:${path.join(dir, "sink.ndjson")}`],
    }));
    const lines = linesWith(r, hook);
    expect(lines.filter((l) => /ECONNREFUSED|connection refused/i.test(l) && !/dropped/.test(l))).toHaveLength(1);
    expect(lines.filter((l) => /queue full \(10 records\)/.test(l))).toHaveLength(1);
    expect(lines.length, r.stderr).toBeLessThanOrEqual(5);
    // Nothing got through, so every record the file sink has was dropped by the webhook, and
    // the last count says so, but for those still queued at the stop: kept on disk for the next start.
    const records = sinkLines(r.dir).length;
    expect(records).toBeGreaterThan(30);
    const kept = Number(/(\d+) record\(s\) not delivered before closing: kept in /.exec(r.stderr)?.[1] ?? 0);
    expect(kept).toBeGreaterThan(0);
    expect(inAll(lines) + kept).toBe(records);
    expect(metric(r, "sockwarden_sink_failures_total", `sink="${hook}"`)).toBe(1);
  });

  it("a full disk under the file sink (an 8 KiB tmpfs): ENOSPC told once, drops counted, no broken line", async () => {
    let onTmpfs: string[] = [];
    const r = await withFault("full", (dir) => {
      const full = path.join(dir, "full");
      fs.mkdirSync(full);
      return {
        sinks: [`file:${full}/sink.ndjson?queueSize=10`, `file:${path.join(dir, "sink.ndjson")}`],
        // The tmpfs exists only in the daemon's mount namespace and goes with it.
        daemonWrap: (argv) => ["unshare", "-m", "--propagation", "private", "sh", "-c", 'mount -t tmpfs -o size=8k sw-full "$0" && exec "$@"', full, ...argv],
        beforeStop: async ({ daemon }) => {
          onTmpfs = readLines(`/proc/${daemon.pid}/root${full}/sink.ndjson`);
        },
      };
    });
    const full = path.join(r.dir, "full", "sink.ndjson");
    // Nothing reached the real directory: the tmpfs was over it.
    expect(fs.existsSync(full)).toBe(false);
    expect(onTmpfs.length).toBeGreaterThan(5);
    for (const line of onTmpfs) expect(() => JSON.parse(line), line).not.toThrow();
    const lines = linesWith(r, `file:${full}`);
    expect(lines.filter((l) => /ENOSPC/.test(l) && !/dropped/.test(l))).toHaveLength(1);
    expect(lines.filter((l) => /queue full \(10 records\)/.test(l))).toHaveLength(1);
    expect(lines.length, r.stderr).toBeLessThanOrEqual(5);
    // Written on the tmpfs, or dropped and counted: the other sink has the sum.
    expect(onTmpfs.length + inAll(lines)).toBe(sinkLines(r.dir).length);
  });

  it("a syslog socket that does not exist: told once, every record counted as dropped", async () => {
    const sock = "/run/sw-no-such-dir/log";
    const r = await withFault("syslog", (dir) => ({ sinks: [`syslog:${sock}`, `file:${path.join(dir, "sink.ndjson")}`] }));
    const lines = linesWith(r, `syslog:${sock}`);
    expect(lines.filter((l) => /no syslog daemon listens on .*\(ENOENT\)/.test(l) && !/dropped/.test(l))).toHaveLength(1);
    expect(lines.length, r.stderr).toBeLessThanOrEqual(3);
    expect(inAll(lines)).toBe(sinkLines(r.dir).length);
  });

  it("a rule that fails on every event: its first failure, then counts; the other rules go on", async () => {
    const rule = path.join(root, "always-fails.ts");
    fs.writeFileSync(rule, `import { defineRule } from "sockwarden";
export default defineRule({ name: "always-fails", on: ["opened"], handle(e) { throw new Error("cannot handle port " + e.endpoint.localPort); } });
`);
    const r = await withFault("rule", () => ({ rules: [rule], configExtra: "[sandbox]\nmax_failures = 1000000\n" }));
    const failures = metric(r, "sockwarden_rule_errors_total", 'rule="always-fails"', 'kind="error"');
    expect(failures).toBeGreaterThan(500);
    const reports = r.sinkRecords.filter((x) => x.kind === "report" && x.rule === "always-fails") as { count?: number; message: string }[];
    expect(reports[0]!.count).toBeUndefined();
    expect(reports[0]!.message).toMatch(/^rule always-fails \(.*always-fails\.ts:2:\d+\): Error: cannot handle port \d+ \[event \d+\]$/);
    expect(reports.length).toBeLessThanOrEqual(4);
    // Each failure is in exactly one record: the first, or a count.
    const told = reports.reduce((n, x) => n + (x.count ?? 1), 0);
    expect(told).toBe(inAll(reports.map((x) => x.message)));
    expect(told).toBeGreaterThanOrEqual(failures);
  });

  it("a storm of SIGHUPs while running: folded into a few reloads, every one counted", async () => {
    const storm = 200;
    const r = await withFault("sighup", () => ({
      during: async ({ daemon, scrape }) => {
        await sleep(1000);
        for (let i = 0; i < storm; i++) {
          daemon.kill("SIGHUP");
          await sleep(5);
        }
        // The reloads the storm set going finish before the run ends: a stop in the middle of one
        // leaves the signals it folds untold, by design.
        const settled = async () => {
          const seen = metricSum((await scrape()) ?? new Map(), "sockwarden_sighups_total");
          return seen > 0 && signalsTold(reloadLines(daemon.stderr)) === seen ? true : undefined;
        };
        await waitFor(() => `every SIGHUP seen to be in a reload line; stderr:\n${daemon.stderr.slice(-3000)}`, settled, 60_000);
      },
    }));
    // Signals of one kind that arrive together may merge into one before a program sees them
    // (how many do depends on how often the daemon is scheduled); every one the daemon saw is
    // counted, in the metric and in the reload lines.
    const seen = metric(r, "sockwarden_sighups_total");
    const reloads = reloadLines(r.stderr);
    const why = `${seen} SIGHUPs seen of ${storm} sent, ${reloads.length} reloads; stderr:\n${r.stderr.slice(-3000)}`;
    expect(seen, why).toBeLessThanOrEqual(storm);
    expect(linesWith(r, "reload refused"), why).toEqual([]);
    expect(reloads.length, why).toBeGreaterThanOrEqual(1);
    expect(signalsTold(reloads), why).toBe(seen);
    expect(metric(r, "sockwarden_reloads_total"), why).toBe(reloads.length);
    // Folded: the signals that arrive during a reload make one more reload, not one each.
    expect(reloads.length * MIN_FOLD, why).toBeLessThanOrEqual(seen);
  });

  it("SIGHUPs from the moment it starts: it comes up, stays up, and reloads once running", async () => {
    const dir = path.join(root, `${++runs}-early-hup`);
    fs.mkdirSync(dir);
    const config = path.join(dir, "soak.toml");
    const port = 9464 + runs;
    fs.writeFileSync(config, soakConfig({ interval: 0.5, dir }, port));
    const daemon = new SoakProcess(ns!.wrap([EXECUTABLE, "run", "--config", config]), { keepStdout: false });
    try {
      // Until the program has its handler, a SIGHUP ends it by default, as it would any program:
      // the storm starts the moment the handler is there, long before the rules are loaded, and
      // lasts until the daemon says it runs.
      await waitForSignalHandler(daemon.pid, "SIGHUP", 20_000, fs.realpathSync(EXECUTABLE));
      let sent = 0;
      const until = performance.now() + 30_000;
      while (performance.now() < until && !daemon.hasExited && !/running /.test(daemon.stderr)) {
        daemon.kill("SIGHUP");
        sent++;
        await sleep(3);
      }
      expect(daemon.hasExited, daemon.stderr).toBe(false);
      expect(await daemon.waitForStderr(/running /, 30_000), daemon.stderr).toBe(true);
      expect(await daemon.waitForStderr(/reloaded/, 30_000), daemon.stderr).toBe(true);
      // Settled: every SIGHUP the daemon saw is in a reload line, so none is waiting for one.
      let seen = NaN;
      let reloads: string[] = [];
      let told = 0;
      const settleBy = performance.now() + 20_000;
      for (;;) {
        seen = metricSum((await scrapeMetrics((a) => ns!.wrap(a), port)) ?? new Map(), "sockwarden_sighups_total");
        reloads = reloadLines(daemon.stderr);
        told = signalsTold(reloads);
        if (told === seen || performance.now() > settleBy) break;
        await sleep(200);
      }
      const why = `${sent} SIGHUPs sent, ${seen} seen, ${told} told in ${reloads.length} reloads; stderr:\n${daemon.stderr.slice(-3000)}`;
      expect(told, why).toBe(seen);
      expect(told, why).toBeGreaterThanOrEqual(1);
      expect(told, why).toBeLessThanOrEqual(sent);
      // Folded: signals that arrive during a reload make one more reload, not one each, so there
      // is no backlog of reloads. How many fit into the storm depends on how fast this machine
      // loads the rules; how many signals each folds, on how fast the test sends them.
      expect(reloads.length * MIN_FOLD, why).toBeLessThanOrEqual(told);
      daemon.kill("SIGTERM");
      expect(await daemon.waitForExit(5000)).toBe(true);
      expect(daemon.code, daemon.stderr).toBe(0);
    } finally {
      await daemon.stop(1000);
    }
  });
});
