/**
 * The fuzzing job: every target (targets.ts) gets a million generated inputs by default, each
 * checked by the property of target.ts (returns, or throws a named error, within the time limit).
 *
 *   npm run fuzz                                  everything, a million inputs each
 *   npm run fuzz -- --runs 50000 --only proc-net,netlink-dump
 *   npm run fuzz -- --only sink-spec --seed 123   replay a run (each target's seed derives from it)
 *   npm run fuzz -- --only sink-spec --seed 123 --path 4711:0:2   replay one (shrunk) input
 *   npm run fuzz -- --list
 *
 * Options: --runs N (per target), --only NAME[,NAME] (repeatable), --seed S, --jobs J (targets run
 * at once, one process each; default: the number of CPUs, at most 2), --time-limit MS (one call
 * slower than this fails; default 200), --hang-after S (one call that has not returned after this
 * long is a hang; default 30), --path P (fast-check's replay path, with --only and --seed).
 *
 * Each target runs in its own process, so a hang or a crash of the runtime shows as that target's
 * failure. The first counterexample is printed shrunk, with the command that replays it, and the
 * job exits 1; other targets still running are stopped.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { ALL_TARGETS, targetNamed } from "./targets.ts";
import { DEFAULT_TIME_LIMIT_MS, namedErrorsOnly, shareProgress, type FuzzTarget } from "./target.ts";

interface Options {
  runs: number;
  only: string[];
  seed: number;
  jobs: number;
  timeLimitMs: number;
  hangAfterS: number;
  path: string | null;
  list: boolean;
  child: string | null;
}

const DEFAULT_RUNS = 1_000_000;

function usage(message: string): never {
  process.stderr.write(`fuzz: ${message}\nusage: bun test/fuzz/run.ts [--runs N] [--only NAME[,NAME]] [--seed S] [--jobs J] [--time-limit MS] [--hang-after S] [--path P] [--list]\n`);
  process.exit(2);
}

function parseOptions(argv: string[]): Options {
  const o: Options = {
    runs: DEFAULT_RUNS,
    only: [],
    seed: (Math.random() * 0x100000000) | 0,
    jobs: Math.max(1, Math.min(2, os.availableParallelism())),
    timeLimitMs: DEFAULT_TIME_LIMIT_MS,
    hangAfterS: 30,
    path: null,
    list: false,
    child: null,
  };
  const number = (flag: string, text: string | undefined, min: number): number => {
    const n = Number(text?.replaceAll("_", ""));
    if (text === undefined || !Number.isSafeInteger(n) || n < min) usage(`${flag} takes a whole number from ${min}, not ${text ?? "nothing"}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = () => argv[++i];
    if (flag === "--runs") o.runs = number(flag, value(), 1);
    else if (flag === "--only") o.only.push(...(value() ?? usage("--only takes target names")).split(",").filter(Boolean));
    else if (flag === "--seed") o.seed = number(flag, value(), -0x80000000) | 0;
    else if (flag === "--jobs") o.jobs = number(flag, value(), 1);
    else if (flag === "--time-limit") o.timeLimitMs = number(flag, value(), 1);
    else if (flag === "--hang-after") o.hangAfterS = number(flag, value(), 1);
    else if (flag === "--path") o.path = value() ?? usage("--path takes a replay path");
    else if (flag === "--list") o.list = true;
    else if (flag === "--child") o.child = value() ?? usage("--child takes a target name");
    else if (flag === "--help" || flag === "-h") usage("fuzz the decoders of outside input");
    else usage(`unknown option ${flag}`);
  }
  for (const name of o.only) if (!targetNamed(name)) usage(`no target named ${name} (try --list)`);
  if (o.path !== null && o.only.length !== 1 && o.child === null) usage("--path replays one input: give one --only target and its --seed");
  return o;
}

/** Each target's seed, derived from the job's seed and its name (FNV-1a), so any one can be replayed alone. */
function targetSeed(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h | 0;
}

function replayCommand(o: Options, name: string, replayPath: string): string {
  return `npm run fuzz -- --only ${name} --seed ${o.seed} --path ${replayPath}`;
}

// ---- one target, in a child process ----

interface ChildResult {
  name: string;
  runs: number;
  ms: number;
  failed: boolean;
  report: string;
}

function runChild(o: Options, name: string): void {
  const t = targetNamed(name)!;
  const memory = new SharedArrayBuffer(8);
  shareProgress(memory);
  const watchdog = new Worker(new URL("./watchdog.ts", import.meta.url).href);
  watchdog.postMessage({ memory, hangAfterMs: o.hangAfterS * 1000, replay: replayCommand(o, name, "{path}"), target: name });
  watchdog.unref();

  // Progress now and then for the parent; with --path, the input before it is decoded.
  let done = 0;
  let lastReport = performance.now();
  const watched: FuzzTarget<unknown> = {
    ...(t as FuzzTarget<unknown>),
    decode(input) {
      if (o.path !== null) process.stderr.write(`input: ${fc.stringify(input)}\n`);
      if (++done % 1000 === 0 && performance.now() - lastReport > 5000) {
        lastReport = performance.now();
        fs.writeSync(1, `${JSON.stringify({ progress: done })}\n`);
      }
      t.decode(input as never);
    },
  };

  const start = performance.now();
  const details = fc.check(namedErrorsOnly(watched, o.timeLimitMs), {
    numRuns: o.path === null ? o.runs : 1,
    seed: targetSeed(o.seed, name),
    ...(o.path === null ? {} : { path: o.path }),
  });
  const ms = performance.now() - start;
  let report = "";
  if (details.failed) {
    const error = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
    report = [
      `FAIL ${name} after ${details.numRuns} inputs (seed ${o.seed}), shrunk ${details.numShrinks} times`,
      `counterexample: ${fc.stringify(details.counterexample?.[0])}`,
      error,
      `replay: ${replayCommand(o, name, details.counterexamplePath ?? "?")}`,
    ].join("\n");
  }
  const result: ChildResult = { name, runs: details.numRuns, ms, failed: details.failed, report };
  fs.writeSync(1, `${JSON.stringify({ result })}\n`);
  process.exit(details.failed ? 1 : 0);
}

// ---- the job ----

interface Running {
  name: string;
  child: ReturnType<typeof Bun.spawn>;
  progress: number;
  started: number;
}

function formatCount(n: number): string {
  return n.toLocaleString("en-US");
}

async function runParent(o: Options): Promise<void> {
  const targets = o.only.length > 0 ? o.only.map((n) => targetNamed(n)!) : [...ALL_TARGETS];
  if (o.list) {
    for (const t of ALL_TARGETS) process.stdout.write(`${t.name.padEnd(24)} ${t.covers}\n`);
    return;
  }
  const scratch = fs.mkdtempSync(path.join(fs.existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir(), "sockwarden-fuzz-"));
  process.stdout.write(
    `fuzz: ${targets.length} targets, ${formatCount(o.path === null ? o.runs : 1)} inputs each, seed ${o.seed}, ` +
      `${Math.min(o.jobs, targets.length)} at a time, time limit ${o.timeLimitMs} ms per call\n` +
      `replay this run: npm run fuzz -- --seed ${o.seed}${o.only.length ? ` --only ${o.only.join(",")}` : ""}${o.runs !== DEFAULT_RUNS ? ` --runs ${o.runs}` : ""}\n`,
  );
  const jobStart = performance.now();
  const queue = [...targets];
  const running = new Set<Running>();
  const results: ChildResult[] = [];
  let failure: string | null = null;

  const launch = (t: FuzzTarget<never>): Running => {
    const args = ["--child", t.name, "--runs", String(o.runs), "--seed", String(o.seed), "--time-limit", String(o.timeLimitMs), "--hang-after", String(o.hangAfterS)];
    if (o.path !== null) args.push("--path", o.path);
    const child = Bun.spawn([process.execPath, import.meta.path, ...args], {
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, SOCKWARDEN_FUZZ_SCRATCH: scratch },
    });
    return { name: t.name, child, progress: 0, started: performance.now() };
  };

  const finish = async (r: Running): Promise<void> => {
    const stdoutDone = (async () => {
      let buffered = "";
      let result: ChildResult | null = null;
      for await (const chunk of r.child.stdout as ReadableStream<Uint8Array>) {
        buffered += Buffer.from(chunk).toString("utf8");
        let nl: number;
        while ((nl = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          try {
            const m = JSON.parse(line) as { progress?: number; result?: ChildResult };
            if (m.progress !== undefined) r.progress = m.progress;
            if (m.result) result = m.result;
          } catch {
            process.stdout.write(`${r.name}: ${line}\n`);
          }
        }
      }
      return result;
    })();
    const stderr = new Response(r.child.stderr as ReadableStream<Uint8Array>).text();
    const code = await r.child.exited;
    const result = await stdoutDone;
    const errText = await stderr;
    running.delete(r);
    if (result && !result.failed && code === 0) {
      results.push(result);
      const rate = result.runs / (result.ms / 1000);
      process.stdout.write(
        `ok   ${result.name.padEnd(24)} ${formatCount(result.runs).padStart(11)} inputs ${(result.ms / 1000).toFixed(1).padStart(7)} s ${formatCount(Math.round(rate)).padStart(8)}/s\n`,
      );
      if (errText.trim() && o.path !== null) process.stdout.write(errText);
      return;
    }
    if (failure !== null) return; // stopped after another target failed
    const how = r.child.signalCode ? `was killed by ${r.child.signalCode}` : `exited with ${code}`;
    failure =
      result?.report ||
      `FAIL ${r.name}: the fuzzing process ${how} without a result (a crash of the runtime or a hang) after about ` +
        `${formatCount(r.progress)} inputs; the same --seed and --only reproduce it, and a smaller --runs narrows it down`;
    failure += errText.trim() ? `\n--- stderr of ${r.name} ---\n${errText.trim()}` : "";
  };

  const pending: Promise<void>[] = [];
  const progressTimer = setInterval(() => {
    const now = ((performance.now() - jobStart) / 1000).toFixed(0);
    const parts = [...running].map((r) => `${r.name} ${r.progress > 0 ? formatCount(r.progress) : "starting"}`);
    if (parts.length) process.stdout.write(`     [${now} s] ${parts.join(", ")}\n`);
  }, 60_000);
  const stopAll = () => {
    for (const r of running) r.child.kill("SIGKILL");
  };
  process.once("SIGINT", () => {
    stopAll();
    fs.rmSync(scratch, { recursive: true, force: true });
    process.exit(130);
  });

  while ((queue.length > 0 || running.size > 0) && failure === null) {
    while (running.size < o.jobs && queue.length > 0) {
      const r = launch(queue.shift()!);
      running.add(r);
      pending.push(finish(r));
    }
    await Promise.race([...running].map((r) => r.child.exited));
    // Let `finish` record the outcome of whichever child ended.
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  if (failure !== null) stopAll();
  await Promise.allSettled(pending);
  clearInterval(progressTimer);
  fs.rmSync(scratch, { recursive: true, force: true });

  const total = (performance.now() - jobStart) / 1000;
  if (failure !== null) {
    process.stdout.write(`\n${failure}\n`);
    process.exit(1);
  }
  const inputs = results.reduce((n, r) => n + r.runs, 0);
  process.stdout.write(`fuzz: all ${results.length} targets passed, ${formatCount(inputs)} inputs in ${total.toFixed(1)} s (seed ${o.seed})\n`);
}

const options = parseOptions(process.argv.slice(2));
if (options.child !== null) runChild(options, options.child);
else await runParent(options);
