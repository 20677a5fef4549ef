/**
 * The soak in short (`npm run soak` is the 30-minute one): `sockwarden run` with every bundled
 * plugin at 500 new connections a second in a private network namespace for about two minutes,
 * among them connections smtp-guard must close (curl and eximx to port 25, over IPv4 and IPv6)
 * and look-alikes it must leave alone (exim4 and postfix to port 25, curl to port 2525, UDP to
 * port 25, the server's side of port 25). Missed and wrong closes are checked exactly, against
 * what each client saw and the audit log; RSS and CPU are reported, RSS growth with a generous
 * bound (two minutes are too short to judge it; the long run does).
 *
 * Needs root and a built dist/sockwarden.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Netns, requireRoot } from "./helpers/netns.ts";
import { EXECUTABLE, requireExecutable } from "./helpers/sockwarden.ts";
import { runSoak } from "../support/soak/soak-run.ts";

const SECONDS = 100;
const WARMUP = 60;
let ns: Netns | undefined;
let dir: string;

beforeAll(async () => {
  requireRoot();
  requireExecutable();
  ns = await Netns.create("soak");
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "sw-soak-"));
});

afterAll(async () => {
  await ns?.dispose();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe("soak", () => {
  it(`every bundled plugin, 500 new connections/s for ${SECONDS} s: none missed, none wrong, memory steady`, async () => {
    const r = await runSoak({
      executable: EXECUTABLE,
      seconds: SECONDS,
      warmupSeconds: WARMUP,
      rate: 500,
      interval: 1,
      classRate: 2,
      hold: 3,
      closeDeadline: 10,
      churnClose: "fin",
      sampleSeconds: 2,
      metricsSeconds: 20,
      dir,
      wrap: (argv) => ns!.wrap(argv),
    });
    const c = r.closes;
    const mib = (k: number | null) => (k === null ? "-" : (k / 1024).toFixed(1));
    // The figures, for the log of the run.
    console.log(
      [
        `soak ${r.trafficSeconds} s: ${r.connections.total} connections (${r.connections.perSecond}/s), ${c.mustClose} to close, ${c.keep} look-alikes; short ones answered ${r.connections.churnOk}, failed ${r.connections.churnFailed}, unanswered after the drain ${r.connections.churnStopped}, slowest ${r.connections.churnSlowestMs} ms (${r.connections.churnSlow} over 1 s); drain ${r.drainSeconds} s`,
        `closed ${c.closed} (${c.closedAtConnect} of them in connect()), missed ${c.missed}, wrong ${c.wrong} (${c.wrongObserved} look-alikes hurt), unaudited ${c.unaudited}; close latency p50 ${c.latencyMs.p50} ms, max ${c.latencyMs.max} ms`,
        `RSS after ${WARMUP} s warm-up ${mib(r.memory.baselineKiB)} -> ${mib(r.memory.finalKiB)} MiB (${r.memory.growthPct?.toFixed(1)}%, lowest samples ${r.memory.floorGrowthPct?.toFixed(1)}%), max ${mib(r.memory.maxKiB)} MiB; CPU mean ${r.cpu.meanPct}% p95 ${r.cpu.p95Pct}% of a core`,
        `alerts: ${JSON.stringify(r.alerts)}; lost notices ${r.finalMetrics["sockwarden_lost_notices_total"] ?? 0}; daemon stderr lines ${r.daemon.stderrLines}`,
        `RSS (MiB) every 10 s: ${r.samples.filter((_, i) => i % 5 === 4).map((s) => mib(s.rssKiB)).join(" ")}`,
      ].join("\n"),
    );
    const k = r.connections;
    const why = [
      `traffic: ${k.total} connections in ${r.trafficSeconds} s (${k.perSecond}/s), ${k.late} scheduled ones dropped because the generator fell over a second behind`,
      `short connections: ${k.churnOk} answered, ${k.churnFailed} failed (first: ${k.churnFirstError ?? "none"}; by reason ${JSON.stringify(k.churnErrors)}), ${k.churnStopped} unanswered at the end of the drain, slowest answer ${k.churnSlowestMs} ms`,
      `connect failures of held connections: ${c.connectFailedExamples.join("; ") || "none"}`,
      `missed: ${c.missedExamples.join("; ")}`,
      `wrong: ${c.wrongExamples.join("; ")}`,
      `stderr: ${r.daemon.stderrTail.join("\n")}`,
    ].join("\n");
    expect(r.connections.perSecond, why).toBeGreaterThanOrEqual(450);
    expect(r.connections.churnFailed, why).toBe(0);
    // The drain after "stop" follows every short connection for 30 s: one still unanswered then
    // is stuck, not cut off.
    expect(r.connections.churnStopped, why).toBe(0);
    expect(c.connectFailed, why).toBe(0);
    expect(c.mustClose, why).toBeGreaterThan(500);
    expect(c.keep, why).toBeGreaterThan(900);
    expect(c.missed, why).toBe(0);
    expect(c.wrong, why).toBe(0);
    expect(c.wrongObserved, why).toBe(0);
    expect(c.kept, why).toBe(c.keep);
    expect(c.unaudited, why).toBe(0);
    expect(c.duplicateAudit, why).toBe(0);
    expect(c.auditByOutcome, why).toEqual({ "close closed": c.closed });
    // outbound-allowlist told every connection to the public address, once each.
    expect(r.alerts["outbound-allowlist"], why).toBe(r.outboundConnections);
    expect(r.daemon.stayedUp, why).toBe(true);
    // How soon it stops is the supervisor's deadline, checked on fake time in
    // test/unit/supervisor.test.ts ("a stop whose outputs never let go ends at the deadline").
    expect(r.daemon.exitCode, why).toBe(0);
    expect(r.finalMetrics["sockwarden_refresh_errors_total"] ?? 0, why).toBe(0);
    // Two minutes cannot judge growth: the table is still filling with TIME_WAIT sockets (60 s)
    // and the collector works in a sawtooth, so growth over the short window swings from
    // -30% to +160% on a loaded host. It is reported; the 10% target is judged by the 30-minute
    // `npm run soak`. What a short run can catch is a runaway, hence the absolute ceiling.
    expect(r.memory.growthPct, "RSS growth after warm-up").not.toBeNull();
    console.log(`soak: RSS growth after warm-up ${r.memory.growthPct!.toFixed(1)}%, max ${(r.memory.maxKiB! / 1024).toFixed(0)} MiB`);
    expect(r.memory.maxKiB!).toBeLessThan(1024 * 1024);
  }, 300_000);
});
