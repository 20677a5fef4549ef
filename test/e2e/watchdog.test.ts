/**
 * The watchdog over rules, through `sockwarden run` in a private network namespace with live
 * connections: next to good-counter (one log per event) runs stuck-native, a rule that sits in
 * one native call on every event, a call that would last hours and that nothing inside its runner
 * can interrupt. Rules run in child processes of the daemon (the executable started with
 * `__sockwarden-rule-runner`), found here through /proc: by default one for all rules, with
 * `isolation = "per-rule"` one each.
 *
 * - Sharing one process, the stuck rule's first overrun ends that process: the stuck rule is told
 *   and goes on in a process of its own; good-counter is told, once, that it lost its state
 *   because stuck-native stalled the process they shared, and gets every event once all the same.
 *
 * - The stuck rule is ended after its budget plus a grace, told (its sandbox was ended), started
 *   afresh and, after repeated overruns, quarantined, holding no process any more; good-counter
 *   logs every event the daemon saw, in order, once, in the same runner all along.
 * - While the stuck rule's runner is inside its call (its CPU time rising well past what starting
 *   a runner costs), /metrics answers; SIGTERM then ends the daemon, with exit status 0, and no
 *   runner outlives it; nor does one outlive a daemon killed with SIGKILL.
 *
 * Times are printed, not asserted; the bounds used are loose enough for a loaded machine and far
 * below the hours the native call would take. Needs root and a built dist/sockwarden.
 */
import { describe, expect, it } from "vitest";
import fs from "node:fs";
import path from "node:path";
import { BackgroundProcess } from "./helpers/netns.ts";
import { EXECUTABLE, REPO_ROOT } from "./helpers/sockwarden.ts";
import { daemonTestbed } from "./helpers/daemon.ts";
import { PYTHON } from "./helpers/scenario.ts";
import { scrapeMetrics } from "../support/soak/soak-run.ts";
import { metricSum } from "../support/soak/soak-analyse.ts";

const STUCK = path.join(REPO_ROOT, "test/fixtures/rules/stuck-native.ts");
const GOOD = path.join(REPO_ROOT, "test/fixtures/rules/good-counter.ts");
/** How the executable is started as a rule runner (the contract between daemon and runner). */
const RUNNER_ARGUMENT = "__sockwarden-rule-runner";
const INTERVAL = 0.3;
/** The daemon's default: failures within a minute that quarantine a rule. */
const MAX_FAILURES = 5;
/**
 * CPU time (clock ticks, 1/100 s) a runner must have used beyond everything good-counter's runner
 * used (its start and every event it handled) before it counts as inside its call: starting a
 * runner costs the same for both rules, so what the stuck one uses beyond is its call.
 */
const IN_CALL_MARGIN_TICKS = 30;

/**
 * Connections on loopback, one every 0.3 s, each held for about a second and closed with a reset
 * (no TIME_WAIT left to close later); ends when stdin closes, at most after two minutes.
 */
const TRAFFIC = `
import socket, struct, sys, select, time
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(64)
held = []
print("ready", flush=True)
end = time.time() + 120
while time.time() < end:
    r, _, _ = select.select([sys.stdin], [], [], 0.3)
    if r and not sys.stdin.readline(): break
    c = socket.create_connection(srv.getsockname()); a, _ = srv.accept()
    held.append((c, a))
    while len(held) > 3:
        for s in held.pop(0):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); s.close()
`;
import { waitFor } from "./helpers/wait-for.ts";

const bed = daemonTestbed("wd", "sw-watchdog-");
let runs = 0;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it returns a value, at most `timeoutMs`; `what` is read when time runs out. */

interface Stat {
  pid: number;
  ppid: number;
  state: string;
  /** utime + stime, clock ticks. */
  ticks: number;
  /** Start time after boot, clock ticks: with the pid, names one process. */
  start: number;
}

/** /proc/PID/stat, or null when the process is gone or a zombie. */
function stat(pid: number): Stat | null {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  // The name in parentheses may hold spaces: fields resume after the last ')', at field 3.
  const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const s = { pid, state: f[0]!, ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]), start: Number(f[19]) };
  return /^[ZX]/.test(s.state) ? null : s;
}

/** The same process still there (not another one at its pid). */
const same = (a: Stat) => {
  const now = stat(a.pid);
  return now !== null && now.start === a.start ? now : null;
};

function isRunner(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").includes(RUNNER_ARGUMENT);
  } catch {
    return false;
  }
}

const pids = () => fs.readdirSync("/proc").filter((e) => /^\d+$/.test(e)).map(Number);

/** The daemon's rule runners, oldest first. */
function runnersOf(daemon: number): Stat[] {
  const out: Stat[] = [];
  for (const pid of pids()) {
    const s = stat(pid);
    if (s && s.ppid === daemon && isRunner(pid)) out.push(s);
  }
  return out.sort((a, b) => a.start - b.start || a.pid - b.pid);
}

/** Every rule runner alive in the test's namespace, whoever its parent is now. */
function runnersInNamespace(): number[] {
  const ino = fs.statSync(`/run/netns/${bed.ns.name}`).ino;
  return pids().filter((pid) => {
    try {
      return stat(pid) !== null && isRunner(pid) && fs.statSync(`/proc/${pid}/ns/net`).ino === ino;
    } catch {
      return false;
    }
  });
}

interface SinkLine {
  kind: string;
  rule?: string;
  outcome?: string;
  count?: number;
  message: string;
}

const PER_RULE = `[sandbox]\nisolation = "per-rule"\n`;

/** A daemon running `sources`; its stdout records as they come. */
async function spawnDaemon(sources: string[], sandbox: string): Promise<{ daemon: BackgroundProcess; port: number; records: SinkLine[]; read: () => Promise<void> }> {
  const port = 9480 + ++runs;
  const config = path.join(bed.dir, `watchdog-${runs}.toml`);
  fs.writeFileSync(
    config,
    `interval = ${INTERVAL}\nmetrics = "127.0.0.1:${port}"\naudit_log = "${path.join(bed.dir, `audit-${runs}.log`)}"\nsinks = ["stdout:ndjson"]\n` +
      `[rules]\nsources = [${sources.map((f) => JSON.stringify(f)).join(", ")}]\n${sandbox}`,
  );
  const daemon = bed.ns.spawn([EXECUTABLE, "run", "--config", config]);
  bed.running.push(daemon);
  await waitFor(() => `the daemon to start; stderr:\n${daemon.stderr}`, () => (/running /.test(daemon.stderr) || daemon.hasExited ? true : undefined), 60_000);
  const records: SinkLine[] = [];
  const read = async () => {
    for (;;) {
      let line: string;
      try {
        line = await daemon.nextLine(0);
      } catch {
        return;
      }
      records.push(JSON.parse(line) as SinkLine);
    }
  };
  return { daemon, port, records, read };
}

/** A daemon with the stuck rule first and good-counter second, each in a runner of its own. */
async function startDaemon(sandbox: string): Promise<{ daemon: BackgroundProcess; port: number; records: SinkLine[]; read: () => Promise<void>; good: Stat }> {
  const { daemon, port, records, read } = await spawnDaemon([STUCK, GOOD], sandbox);
  expect(daemon.stderr, "daemon start").toMatch(/sockwarden: running stuck-native, good-counter every 0\.3 s/);
  // The runners, loaded in the order of the sources: stuck-native's, then good-counter's.
  const both = await waitFor(() => `two rule runners under the daemon; found ${JSON.stringify(runnersOf(daemon.pid))}`, () => {
    const r = runnersOf(daemon.pid);
    return r.length === 2 ? r : undefined;
  }, 10_000);
  return { daemon, port, records, read, good: both[1]! };
}

async function startTraffic(): Promise<BackgroundProcess> {
  const traffic = bed.ns.spawn([PYTHON, "-c", TRAFFIC]);
  bed.running.push(traffic);
  expect(await traffic.nextLine(15_000)).toBe("ready");
  return traffic;
}

/**
 * The stuck rule's runner once it is inside its call: not good-counter's, CPU time past all that
 * good-counter's runner used, and rising.
 */
async function runnerInCall(daemon: BackgroundProcess, good: Stat, timeoutMs: number): Promise<Stat> {
  let before = new Map<number, Stat>();
  return waitFor(() => `the stuck rule's runner to be inside its call; runners: ${JSON.stringify(runnersOf(daemon.pid))}; stderr:\n${daemon.stderr}`, () => {
    const g = same(good);
    if (!g) throw new Error(`good-counter's runner ${good.pid} is gone`);
    const now = new Map(runnersOf(daemon.pid).filter((r) => r.pid !== good.pid).map((r) => [r.pid, r]));
    const found = [...now.values()].find((r) => {
      const b = before.get(r.pid);
      return b !== undefined && b.start === r.start && r.ticks > b.ticks && r.ticks > g.ticks + IN_CALL_MARGIN_TICKS;
    });
    before = now;
    return found;
  }, timeoutMs);
}

/** Waits for the daemon to exit after SIGTERM; returns the milliseconds it took. */
async function terminate(daemon: BackgroundProcess): Promise<number> {
  const sent = performance.now();
  process.kill(daemon.pid, "SIGTERM");
  const exited = await daemon.waitForExit(10_000);
  const ms = Math.round(performance.now() - sent);
  expect(exited, `the daemon did not stop within 10 s of SIGTERM; stderr:\n${daemon.stderr}`).toBe(true);
  expect(daemon.child.exitCode, daemon.stderr).toBe(0);
  return ms;
}

/** No rule runner left in the namespace (the stuck one would go on for hours). */
async function expectNoRunnerLeft(): Promise<void> {
  // Ended runners may take a moment to be reaped; one left behind stays for good.
  const end = performance.now() + 5_000;
  while (runnersInNamespace().length > 0 && performance.now() < end) await sleep(100);
  expect(runnersInNamespace(), "rule runners that outlived the daemon").toEqual([]);
}

describe("the watchdog over rules, in the daemon", { timeout: 180_000 }, () => {
  it("ends a rule stuck in one native call, tells it and quarantines it; the other rule gets every event", async () => {
    const { daemon, port, records, read, good } = await startDaemon(PER_RULE);
    const traffic = await startTraffic();

    // Each runner of the stuck rule, from when it is first seen until it is gone.
    const lives = new Map<string, { pid: number; from: number; to: number }>();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const t = performance.now();
        for (const r of runnersOf(daemon.pid)) {
          if (r.pid === good.pid) continue;
          const key = `${r.pid}:${r.start}`;
          const life = lives.get(key) ?? { pid: r.pid, from: t, to: t };
          life.to = t;
          lives.set(key, life);
        }
        await sleep(50);
      }
    })();

    const quarantined = (r: SinkLine) => r.kind === "report" && r.rule === "stuck-native" && r.outcome === "quarantined";
    await waitFor(() => `stuck-native to be quarantined; records: ${JSON.stringify(records.filter((r) => r.kind === "report"))}; stderr:\n${daemon.stderr}`, async () => {
      await read();
      return records.some(quarantined) ? true : undefined;
    }, 120_000);
    traffic.closeInput();
    expect(await traffic.waitForExit(10_000)).toBe(true);

    // Quarantined, the rule holds no process: only good-counter's runner is left, the same one.
    const left = await waitFor(() => `the stuck rule's runner to go; runners: ${JSON.stringify(runnersOf(daemon.pid))}`, () => {
      const r = runnersOf(daemon.pid);
      return r.length === 1 ? r : undefined;
    }, 10_000);
    expect(left.map((r) => [r.pid, r.start])).toEqual([[good.pid, good.start]]);
    sampling = false;
    await sampler;

    // Every event counted so far reaches good-counter (the scrape's own connection comes later).
    const metrics = await scrapeMetrics((a) => bed.ns.wrap(a), port);
    expect(metrics, "/metrics did not answer").not.toBeNull();
    const seen = metricSum(metrics!, "sockwarden_events_total");
    const goodLogs = () => records.filter((r) => r.kind === "log" && r.rule === "good-counter");
    await waitFor(() => `good-counter to log the ${seen} events counted in /metrics; it logged ${goodLogs().length}`, async () => {
      await read();
      return goodLogs().length >= seen ? true : undefined;
    }, 30_000);
    expect(same(good), "good-counter's runner was ended").not.toBeNull();

    const stopMs = await terminate(daemon);
    await read();
    await expectNoRunnerLeft();

    // Every event, once, in order, to one runtime: the event numbers run 1, 2, 3, … and the
    // rule's own count with them.
    const logged = goodLogs().map((r) => r.message);
    expect(logged.length).toBeGreaterThanOrEqual(seen);
    expect(seen).toBeGreaterThan(20);
    expect(logged).toEqual(logged.map((_, i) => `seen ${i + 1} #${i + 1}`));

    // Told: the first timeout as it is, the others in a count before the quarantine; nothing after.
    const reports = records.filter((r) => r.kind === "report");
    const stuck = reports.filter((r) => r.rule === "stuck-native");
    const why = JSON.stringify(reports, null, 1);
    expect(reports.filter((r) => r.rule !== "stuck-native"), why).toEqual([]);
    expect(stuck.at(-1)!.outcome, why).toBe("quarantined");
    expect(stuck.at(-1)!.message, why).toMatch(new RegExp(`^rule stuck-native \\(.*stuck-native\\.ts\\): quarantined: failed ${MAX_FAILURES} times within 60 s; it gets no more events until it is reloaded$`));
    const timeouts = stuck.slice(0, -1);
    expect(timeouts.map((r) => r.outcome), why).toEqual(timeouts.map(() => "timeout"));
    expect(timeouts[0]!.count, why).toBeUndefined();
    expect(timeouts[0]!.message, why).toMatch(/^rule stuck-native \(.*stuck-native\.ts\): timeout: did not answer within \d+ ms .*, so its sandbox was ended; it starts afresh/);
    expect(timeouts.reduce((n, r) => n + (r.count ?? 1), 0), why).toBe(MAX_FAILURES);
    expect(metricSum(metrics!, "sockwarden_rule_errors_total", 'rule="stuck-native"', 'kind="timeout"')).toBe(MAX_FAILURES);
    expect(metricSum(metrics!, "sockwarden_rule_errors_total", 'rule="stuck-native"', 'kind="quarantined"')).toBe(1);
    // Each overrun ended its runner, and the rule started afresh in a new one.
    expect(lives.size, JSON.stringify([...lives.values()])).toBe(MAX_FAILURES);
    // The stuck rule never got a call through, so it logged nothing.
    expect(records.filter((r) => r.rule === "stuck-native" && r.kind !== "report")).toEqual([]);

    const allowances = timeouts.map((r) => /within (\d+) ms/.exec(r.message)?.[1]).filter(Boolean);
    const seenLives = [...lives.values()].map((l) => Math.round(l.to - l.from));
    console.log(
      `watchdog: ${seen} events in /metrics, ${logged.length} logged by good-counter; stuck-native: ${MAX_FAILURES} timeouts ` +
        `(allowance in the first report: ${allowances[0]} ms), ${lives.size} runners, each seen for about ${seenLives.join(", ")} ms; ` +
        `daemon stopped ${stopMs} ms after SIGTERM`,
    );
  });

  it("sharing one process: the stuck rule goes on in a process of its own; good-counter is told once that it lost its state and gets every event", async () => {
    const { daemon, port, records, read } = await spawnDaemon([GOOD, STUCK], "");
    expect(daemon.stderr, "daemon start").toMatch(/sockwarden: running good-counter, stuck-native every 0\.3 s/);
    const first = await waitFor(() => `one rule runner under the daemon; found ${JSON.stringify(runnersOf(daemon.pid))}`, () => {
      const r = runnersOf(daemon.pid);
      return r.length === 1 ? r[0] : undefined;
    }, 10_000);
    const traffic = await startTraffic();
    const quarantined = (r: SinkLine) => r.kind === "report" && r.rule === "stuck-native" && r.outcome === "quarantined";
    await waitFor(() => `stuck-native to be quarantined; records: ${JSON.stringify(records.filter((r) => r.kind === "report"))}; stderr:\n${daemon.stderr}`, async () => {
      await read();
      return records.some(quarantined) ? true : undefined;
    }, 120_000);
    traffic.closeInput();
    expect(await traffic.waitForExit(10_000)).toBe(true);

    // Left: one runner, good-counter's new shared one (the first was ended with the stall).
    const left = await waitFor(() => `one runner to be left; runners: ${JSON.stringify(runnersOf(daemon.pid))}`, () => {
      const r = runnersOf(daemon.pid);
      return r.length === 1 ? r : undefined;
    }, 10_000);
    expect(same(first), "the stalled shared runner is still there").toBeNull();
    const metrics = await scrapeMetrics((a) => bed.ns.wrap(a), port);
    expect(metrics, "/metrics did not answer").not.toBeNull();
    const seen = metricSum(metrics!, "sockwarden_events_total");
    const goodLogs = () => records.filter((r) => r.kind === "log" && r.rule === "good-counter");
    await waitFor(() => `good-counter to log the ${seen} events counted in /metrics; it logged ${goodLogs().length}`, async () => {
      await read();
      return goodLogs().length >= seen ? true : undefined;
    }, 30_000);
    expect(same(left[0]!), "good-counter's runner was ended again").not.toBeNull();
    await terminate(daemon);
    await read();
    await expectNoRunnerLeft();

    // Every event once, in order; its own count starts again once, where its state was lost.
    const logged = goodLogs().map((r) => /^seen (\d+) #(\d+)$/.exec(r.message)!);
    expect(seen).toBeGreaterThan(20);
    expect(logged.map((m) => Number(m[1]))).toEqual(logged.map((_, i) => i + 1));
    const counts = logged.map((m) => Number(m[2]));
    const reset = counts.findIndex((c, i) => c !== i + 1);
    expect(reset, JSON.stringify(counts)).toBeGreaterThan(0);
    expect(counts.slice(reset)).toEqual(counts.slice(reset).map((_, i) => i + 1));

    const reports = records.filter((r) => r.kind === "report");
    const why = JSON.stringify(reports, null, 1);
    const good = reports.filter((r) => r.rule === "good-counter");
    expect(good.map((r) => r.outcome), why).toEqual(["restarted"]);
    expect(good[0]!.message, why).toMatch(/^rule good-counter \(.*good-counter\.ts\): restarted: lost its state: rule stuck-native stalled the sandbox process they shared, so that process was ended; this rule starts afresh in a new one$/);
    const stuck = reports.filter((r) => r.rule === "stuck-native");
    expect(stuck[0]!.message, why).toMatch(/timeout: did not answer within \d+ ms .*; from now on it runs in a sandbox process of its own$/);
    expect(stuck.at(-1)!.outcome, why).toBe("quarantined");
  });

  it("answers /metrics while a rule sits in its native call, and SIGTERM ends the daemon and every runner", async () => {
    // A longer budget makes the call's allowance a few seconds, room for a scrape inside it;
    // failures never quarantine, so the rule is stuck whenever events come.
    const { daemon, port, good } = await startDaemon(`${PER_RULE}time_budget_ms = 1000\nmax_failures = 1000000\n`);
    await startTraffic();

    // A scrape that starts and ends while the same runner is inside its call (should the watchdog
    // end that call in the middle, the next one is tried).
    let inCall: Stat | null = null;
    let scraped: Map<string, number> | null = null;
    for (let attempt = 0; attempt < 5 && !inCall; attempt++) {
      const runner = await runnerInCall(daemon, good, 60_000);
      scraped = await scrapeMetrics((a) => bed.ns.wrap(a), port);
      expect(scraped, `/metrics did not answer while runner ${runner.pid} was in its call; stderr:\n${daemon.stderr}`).not.toBeNull();
      const after = same(runner);
      if (after && after.ticks > runner.ticks) inCall = after;
    }
    expect(inCall, "no scrape fitted inside one stuck call").not.toBeNull();
    expect(metricSum(scraped!, "sockwarden_events_total")).toBeGreaterThan(0);
    expect(inCall!.state, "the stuck runner is running").toBe("R");

    // SIGTERM while that call is under way: it would last hours.
    const stopMs = await terminate(daemon);
    await expectNoRunnerLeft();
    expect(same(inCall!), "the stuck runner outlived the daemon").toBeNull();
    console.log(`watchdog: SIGTERM during a native call (runner ${inCall!.pid}, ${inCall!.ticks / 100} s of CPU in): the daemon stopped in ${stopMs} ms`);
  });

  it("a daemon killed with SIGKILL while a rule sits in its native call leaves no runner behind", async () => {
    // Nothing of the daemon runs to end its runners: the stuck one, reading nothing, must end
    // with its parent all the same.
    const { daemon, good } = await startDaemon(`${PER_RULE}time_budget_ms = 1000\nmax_failures = 1000000\n`);
    await startTraffic();
    const runner = await runnerInCall(daemon, good, 60_000);
    process.kill(daemon.pid, "SIGKILL");
    expect(await daemon.waitForExit(10_000)).toBe(true);
    await expectNoRunnerLeft();
    expect(same(runner), "the stuck runner outlived the daemon").toBeNull();
  });
});
