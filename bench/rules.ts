// Rules benchmark: events per second through the bundled rule smtp-guard in its QuickJS sandbox
// (RuleSet.dispatch end to end: encoding, sandbox, action checking) against the same rule as
// plain JavaScript in this process, on the same event objects in the same run; memory per
// loaded rule; and, when the sandbox misses its target, where its time goes.
//
//   bun bench/rules.ts [--events 1m] [--runs 5] [--batch-sizes 20,1000] [--no-save]
//   bun bench/run.ts --suite rules [same options]      (`npm run bench` runs it after the others)
//
// No root, no network namespace: everything runs in this process, except the memory figures,
// which come from a fresh one (bench/lib/rules-memory.ts). See bench/README.md.
import { readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { RuleSet } from "../src/rules/rule-set.ts";
import type { RuleReport } from "../src/model/rule-action.ts";
import { RuleSandbox, DEFAULT_LIMITS } from "../src/rules/sandbox.ts";
import { compileRule } from "../src/rules/compile-rule.ts";
import { loadRuleSource } from "../src/rules/rule-locations.ts";
import { parseRulesOptions, REPO_ROOT, RULES_USAGE, type RulesOptions } from "./lib/rules-options.ts";
import { runSuite, type SuiteHooks } from "./lib/skeleton.ts";
import { saveLatest } from "./lib/results.ts";
import { importHostRule, type HostRule } from "./lib/rules-host.ts";
import { defaultBatchSize, Interrupted, loadavg, runPass, SMTP_GUARD, type PassResult } from "./lib/rules-measure.ts";
import { measureMemoryInChild } from "./lib/rules-memory.ts";
import { makeEvents, type EventMix } from "./lib/rules-events.ts";
import { profileDispatch, type Profile } from "./lib/rules-profile.ts";
import {
  evaluateTarget,
  rate,
  ratioText,
  rulesMarkdown,
  spread,
  summarizeBatch,
  summarizeMemory,
  type BatchResult,
  type MemorySummary,
  type RulesReport,
} from "./lib/rules-report.ts";

export { RULES_USAGE } from "./lib/rules-options.ts";

const log = (msg: string): void => {
  process.stderr.write(`[bench:rules] ${msg}\n`);
};

/** Events in the warm-up pass before the measured runs of a batch size. */
const WARMUP_EVENTS = 200_000;
const PROFILE_REPETITIONS = 5;

function hostFacts(): Record<string, string | number | null> {
  let cpu: string | null = null;
  try {
    cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1]?.trim() ?? null;
  } catch {
    // not fatal
  }
  return {
    cpu,
    cpus: os.cpus().length,
    kernel: os.release(),
    memTotalMiB: Math.round(os.totalmem() / 1024 / 1024),
    bun: Bun.version,
    loadStart: loadavg(),
    loadEnd: null,
  };
}

interface BatchPlan {
  batchSize: number;
  isDefault: boolean;
  runs: number;
  host: HostRule | null;
}

interface Ctx {
  opts: RulesOptions;
  deadline: number;
  stop: () => boolean;
  notes: string[];
  mix: EventMix | null;
}

/** Warm-up and measured runs at one batch size; stops early at the deadline (noted). */
async function measureBatch(c: Ctx, plan: BatchPlan): Promise<BatchResult> {
  const reports: RuleReport[] = [];
  const rules = new RuleSet({ ...(plan.isDefault ? {} : { batchSize: plan.batchSize }), onReport: (r) => reports.push(r) });
  const base = { batchSize: plan.batchSize, isDefault: plan.isDefault, eventsPerRun: c.opts.events, plannedRuns: plan.runs };
  const runs: PassResult[] = [];
  let warmup: PassResult | null = null;
  let note: string | null = null;
  try {
    await rules.add(SMTP_GUARD);
    const pass = (events: number) =>
      runPass({ rules, reports, events, chunk: c.opts.chunk, seed: c.opts.seed, host: plan.host, stop: c.stop });
    const warmEvents = Math.min(c.opts.events, WARMUP_EVENTS);
    log(`batch size ${plan.batchSize}${plan.isDefault ? " (default)" : ""}: warm-up over ${warmEvents.toLocaleString("en-US")} events`);
    warmup = (await pass(warmEvents)).result;
    let perEventMs = (warmup.sandbox.ms + (warmup.host?.ms ?? 0)) / warmEvents;
    for (let i = 0; i < plan.runs; i++) {
      // Room for this run: the last rate plus the untimed event generation, with a margin.
      const estimate = perEventMs * c.opts.events * 1.3 + c.opts.events * 0.002;
      if (Date.now() + estimate > c.deadline) {
        note = `cut short by --max-minutes after ${runs.length} of ${plan.runs} runs`;
        c.notes.push(`batch size ${plan.batchSize}: ${note}.`);
        break;
      }
      const { result, mix } = await pass(c.opts.events);
      if (!c.mix) c.mix = { ...mix, byType: { ...mix.byType } };
      runs.push(result);
      perEventMs = (result.sandbox.ms + (result.host?.ms ?? 0)) / c.opts.events;
      const hostPart = result.host ? `, plain JS ${rate(result.host.eventsPerSec)} events/s` : "";
      log(`  run ${i + 1}/${plan.runs}: sandbox ${rate(result.sandbox.eventsPerSec)} events/s${hostPart} (${result.sandbox.closes} closes, load ${result.loadavg})`);
    }
  } catch (e) {
    if (e instanceof Interrupted) throw e;
    note = `FAILED: ${e instanceof Error ? e.message : String(e)}`;
    c.notes.push(`batch size ${plan.batchSize}: ${note}`);
  } finally {
    rules.dispose();
  }
  const problems = [...(warmup ? [warmup] : []), ...runs].filter((r) => r.firstReport !== null);
  if (problems.length) {
    c.notes.push(
      `batch size ${plan.batchSize}: the rule set reported ${JSON.stringify(problems[0]!.reports)} in a pass (first: ${problems[0]!.firstReport}); its figures include that handling.`,
    );
  }
  for (const r of runs) {
    if (r.host && r.host.closes !== r.sandbox.closes) {
      c.notes.push(`batch size ${plan.batchSize}: the sandbox accepted ${r.sandbox.closes} closes, the plain-JS rule took ${r.host.closes}: they should agree.`);
      break;
    }
  }
  return summarizeBatch({ ...base, warmup, runs, note });
}

async function measureRules(opts: RulesOptions): Promise<number> {
  const started = new Date();
  const deadline = started.getTime() + opts.maxMinutes * 60_000;
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (!interrupted) log(`${sig}: stopping after the current chunk, then writing what was measured`);
    interrupted = true;
  };
  const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  for (const s of signals) process.on(s, onSignal);
  const c: Ctx = { opts, deadline, stop: () => interrupted, notes: [], mix: null };
  const host = hostFacts();
  const pluginFile = path.join(REPO_ROOT, "plugins", "smtp-guard.ts");
  const tempDir = path.join(os.tmpdir(), `sw-bench-rules-${process.pid}`);

  let main: BatchResult | null = null;
  const sweep: BatchResult[] = [];
  let memory: MemorySummary | null = null;
  let memoryError: string | null = null;
  let profile: Profile | null = null;
  let profileNote: string | null = null;
  let ruleOn: string[] = [];
  const defaultSize = defaultBatchSize();

  try {
    const hostRule = await importHostRule(pluginFile);
    {
      const probe = new RuleSet();
      await probe.add(SMTP_GUARD);
      ruleOn = probe.loaded[0]!.info.on;
      probe.dispose();
    }
    log(
      `${opts.events.toLocaleString("en-US")} events per run, ${opts.runs} runs at the default batch size ${defaultSize}` +
        (opts.batchSizes.length ? `, ${opts.sweepRuns} at ${opts.batchSizes.join(", ")}` : "") +
        `; budget ${opts.maxMinutes} min; load ${host.loadStart}`,
    );
    main = await measureBatch(c, { batchSize: defaultSize, isDefault: true, runs: opts.runs, host: hostRule });

    if (!interrupted) {
      log(`memory: ${opts.copies} copies of the rule in a fresh process`);
      try {
        memory = summarizeMemory(await measureMemoryInChild(opts.copies, 10_000, Math.max(60_000, deadline - Date.now())));
        log(`  +${memory.perRuleMiB?.toFixed(2) ?? "?"} MiB RSS per further rule, WebAssembly memory ${memory.wasmMiB.median?.toFixed(1)} MiB each`);
      } catch (e) {
        memoryError = e instanceof Error ? e.message : String(e);
        c.notes.push(`memory: ${memoryError}`);
      }
    }

    const target = evaluateTarget(main, false);
    const mainRate = main.rate.median ?? main.warmup?.sandbox.eventsPerSec ?? null;
    if (opts.profileEvents === 0) profileNote = "Not profiled (--profile-events 0).";
    else if (target.status === "met" && !opts.profileAlways) profileNote = "Not profiled: the target is met (--profile profiles anyway).";
    else if (interrupted) profileNote = "Not profiled: interrupted.";
    else if (!mainRate) profileNote = "Not profiled: the sandbox was not measured.";
    else {
      const estimate = ((opts.profileEvents / mainRate) * 1000 * (PROFILE_REPETITIONS + 1) * 4 + opts.profileEvents * 0.002);
      if (Date.now() + estimate > deadline) profileNote = "Not profiled: no time left within --max-minutes.";
      else {
        log(`profile: ${opts.profileEvents.toLocaleString("en-US")} events at batch size ${defaultSize}`);
        const events = makeEvents(opts.profileEvents, opts.seed);
        profile = await profileDispatch({
          events,
          batchSize: defaultSize,
          repetitions: PROFILE_REPETITIONS,
          log: (m) => log(`  ${m.replace(/^profile: /, "")}`),
          // The stages of the sandbox itself run in this process (RuleSandbox), without the
          // runner process that the rule set puts around it.
          load: async (name, source) => RuleSandbox.create(await compileRule(source, `${name}.ts`), {}, DEFAULT_LIMITS),
          smtpGuard: async () => RuleSandbox.create(await compileRule(await loadRuleSource(SMTP_GUARD), SMTP_GUARD.label), {}, DEFAULT_LIMITS),
        });
      }
    }

    for (const size of opts.batchSizes) {
      if (interrupted) break;
      if (size === defaultSize) continue;
      const estimate = (c.opts.events * (opts.sweepRuns + 0.2) * 1000 * (size < 50 ? 3 : 1.3)) / (mainRate ?? 50_000);
      if (Date.now() + estimate > deadline) {
        c.notes.push(`batch size ${size}: skipped, no time left within --max-minutes.`);
        continue;
      }
      sweep.push(await measureBatch(c, { batchSize: size, isDefault: false, runs: opts.sweepRuns, host: null }));
    }
  } catch (e) {
    if (!(e instanceof Interrupted)) {
      log(`failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      c.notes.push(`failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  } finally {
    for (const s of signals) process.off(s, onSignal);
    rmSync(tempDir, { recursive: true, force: true });
  }

  host.loadEnd = loadavg();
  const hostRuns = main ? main.runs.map((r) => r.host!).filter(Boolean) : [];
  const hostSide = hostRuns.length ? { runs: hostRuns, rate: spread(hostRuns.map((t) => t.eventsPerSec)) } : null;
  const ratio = main?.rate.median && hostSide?.rate.median ? main.rate.median / hostSide.rate.median : null;
  const closesAgree = main && main.runs.length ? main.runs.every((r) => r.host !== null && r.host.closes === r.sandbox.closes) : null;
  const load1 = (l: unknown): number => Number(String(l).split(" ")[0]);
  if (Number(host.cpus) > 0 && Math.max(load1(host.loadStart), load1(host.loadEnd)) > Number(host.cpus) * 0.5) {
    c.notes.push(
      `the host was busy (load ${host.loadStart} at start, ${host.loadEnd} at end, on ${host.cpus} CPUs; the load of each run is in the JSON): ` +
        `wall-clock rates are lower and more spread than on a quiet machine; events/CPU-s is much less affected.`,
    );
  }
  const report: RulesReport = {
    kind: "sockwarden-bench-rules",
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    interrupted,
    host,
    options: { ...opts },
    rule: { name: "smtp-guard", file: path.relative(REPO_ROOT, pluginFile), on: ruleOn },
    stream: c.mix,
    defaultBatchSize: defaultSize,
    chunk: opts.chunk,
    main,
    hostSide,
    ratio,
    closesAgree,
    target: evaluateTarget(main, interrupted),
    sweep,
    memory,
    memoryError,
    profile,
    profileNote,
    notes: c.notes,
  };

  const md = rulesMarkdown(report);
  process.stdout.write(md + "\n");
  log(ratioText(report));
  log(`target: ${report.target.detail} — ${report.target.status.toUpperCase()}`);
  let code = interrupted ? 130 : main && main.runs.length > 0 ? 0 : 1;
  if (opts.save && !saveLatest(opts.outDir, "rules", md, report, log) && code === 0) code = 1;
  return code;
}

export const RULES_SUITE: SuiteHooks<RulesOptions> = {
  name: "rules",
  script: import.meta.path,
  usage: RULES_USAGE,
  parse: parseRulesOptions,
  needs: null,
  measure: (o) => measureRules(o),
};

export const runRulesSuite = (args: string[], invocation?: string): Promise<number> => runSuite(RULES_SUITE, args, invocation);

if (import.meta.main) process.exitCode = await runRulesSuite(process.argv.slice(2));
