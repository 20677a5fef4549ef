// Soak: `sockwarden run` with every bundled plugin for a long time (30 minutes by default) at 500
// new connections a second in a private network namespace, with connections smtp-guard must
// close and look-alikes it must not. Reports RSS and CPU over time, missed and wrong closes.
//
//   sudo bun bench/soak.ts [--minutes 30] [--rate 500] [--interval 1]      (npm run soak)
//
// Hooks on the suite skeleton (bench/lib/skeleton.ts): its namespace is sw-bench-<pid>-soak. The
// run itself is test/support/soak/soak-run.ts, which test/e2e/soak.test.ts runs for about two
// minutes.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { runSuite, NAMESPACE_TOOLS, type SuiteHooks } from "./lib/skeleton.ts";
import { hostInfo } from "./lib/host.ts";
import { saveLatest } from "./lib/results.ts";
import { SOAK_USAGE, parseSoakOptions, type SoakOptions } from "./lib/soak-options.ts";
import { runSoak } from "../test/support/soak/soak-run.ts";
import { soakMarkdown, soakTargets } from "./lib/soak-report.ts";

const log = (msg: string): void => {
  process.stderr.write(`[bench:soak] ${new Date().toISOString().slice(11, 19)} ${msg}\n`);
};

async function inner(o: SoakOptions, invocation: string): Promise<number> {
  if (!fs.existsSync(o.exe)) {
    log(`${o.exe} does not exist: build it first (npm run build)`);
    return 2;
  }
  // A private copy: a rebuild of dist/ during a long run must not change what is measured.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sw-soak-"));
  const exe = path.join(dir, "sockwarden");
  fs.copyFileSync(o.exe, exe);
  fs.chmodSync(exe, 0o755);
  let stop = false;
  let keep = false;
  const onSignal = () => {
    stop = true;
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    const host = await hostInfo();
    let lastLog = 0;
    const result = await runSoak({
      executable: exe,
      seconds: Math.round(o.minutes * 60),
      warmupSeconds: Math.round(o.warmupMinutes * 60),
      rate: o.rate,
      interval: o.interval,
      classRate: o.classRate,
      hold: Math.max(3, 3 * o.interval),
      closeDeadline: Math.max(10, 10 * o.interval),
      churnClose: o.churnClose,
      sampleSeconds: o.sampleSeconds,
      metricsSeconds: Math.max(30, o.sampleSeconds),
      dir,
      wrap: (argv) => argv,
      log,
      onSample: (s) => {
        if (s.t - lastLog >= 60) {
          lastLog = s.t;
          log(`t=${Math.round(s.t)} s  RSS ${(s.rssKiB / 1024).toFixed(1)} MiB  CPU ${s.cpuPct}%`);
        }
        if (stop) throw new Error("interrupted");
      },
    });
    const bucket = o.minutes >= 10 ? 60 : 10;
    const md = soakMarkdown(result, host, invocation, bucket);
    process.stdout.write(md + "\n");
    const { sinkRecords: _records, stderr: _stderr, ...figures } = result;
    if (o.save && !saveLatest(o.outDir, "soak", md, { host, invocation, ...figures }, log)) return 1;
    const t = soakTargets(result);
    if (!(t.missed && t.wrong && t.audited)) {
      // The records (traffic, audit log, sinks) say what happened; keep them.
      keep = true;
      log(`records kept in ${dir}`);
    }
    return t.missed && t.wrong && t.rss && t.up && t.audited ? 0 : 1;
  } catch (e) {
    log(`error: ${e instanceof Error ? e.message : String(e)}`);
    return stop ? 130 : 1;
  } finally {
    if (keep) fs.rmSync(exe, { force: true });
    else fs.rmSync(dir, { recursive: true, force: true });
  }
}

export const SOAK_SUITE: SuiteHooks<SoakOptions> = {
  name: "soak",
  script: import.meta.path,
  usage: SOAK_USAGE,
  parse: parseSoakOptions,
  needs: () => ({ required: NAMESPACE_TOOLS }),
  measure: (o, run) => inner(o, run.invocation),
};

if (import.meta.main) process.exitCode = await runSuite(SOAK_SUITE, process.argv.slice(2));
