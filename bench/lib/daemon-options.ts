// Command-line options of bench/daemon.ts (the daemon suite; also `bun bench/run.ts --suite daemon`).
import { parseArgs, type ParseArgsConfig } from "node:util";
import path from "node:path";
import { BENCH_DIR, REPO_ROOT } from "./options.ts";
import { DEFAULT_RESYNC_S, parseSensors, SENSORS, type Sensor } from "./sensors.ts";

export const DAEMON_PHASES = ["latency", "steady"] as const;
export type DaemonPhase = (typeof DAEMON_PHASES)[number];
export type ChurnClose = "fin" | "rst";

export interface DaemonOptions {
  phases: DaemonPhase[];
  /** Sensors measured side by side, each in every phase. */
  sensors: Sensor[];
  /** Seconds between full snapshots with the eBPF sensor (--resync of the executable, where it has one). */
  resync: number;
  /** Refresh intervals (seconds) at which detect-to-close latency is measured. */
  intervals: number[];
  /** Latency samples per interval. */
  samples: number;
  /** Idle sockets held in the steady phase (both ends of each connection count). */
  sockets: number;
  /** New short connections a second in the steady phase. */
  churnRate: number;
  churnClose: ChurnClose;
  /** Steady phase: measured window and warm-up before it, seconds. */
  seconds: number;
  warmup: number;
  /** Refresh interval of the steady phase, seconds. */
  steadyInterval: number;
  seed: number;
  /** Where the measured daemons (and their rule runners) write CPU profiles, or null. */
  cpuProf: string | null;
  exe: string;
  maxMinutes: number;
  outDir: string;
  save: boolean;
  /** Set by the outer process: absolute end of the whole run (epoch ms). */
  deadline: number;
  inner: boolean;
  help: boolean;
}

export const DAEMON_USAGE = `Usage: bun bench/daemon.ts [options]      (as root; or bun bench/run.ts --suite daemon)

\`sockwarden run\` in a private network namespace:
  latency  how long after connect() a client that is not a mail server sees its
           connection to port 25 aborted by smtp-guard (median, p95, p99, max),
           at each refresh interval
  steady   CPU and RSS of the daemon with every bundled plugin loaded, over idle
           loopback sockets plus a steady stream of short connections

Options:
  --phases LIST         subset of latency,steady                          [all]
  --sensors LIST        subset of poll,ebpf: each phase runs once per sensor
                        (an unavailable ebpf sensor is reported, not failed) [all]
  --resync S            ebpf: seconds between full snapshots (passed as
                        --resync where the executable has it)              [30]
  --intervals LIST      latency: refresh intervals, seconds             [1,0.1]
  --samples N           latency: connections per interval                 [200]
  --sockets N           steady: idle sockets (held as N/2 connections)    [10k]
  --churn-rate N        steady: new short connections a second            [500]
  --churn-close MODE    steady: fin (normal close, TIME_WAIT left behind)
                        or rst (reset, nothing left behind)               [fin]
  --seconds S           steady: measured window                            [60]
  --warmup S            steady: seconds of churn before the window
                        [65 with --churn-close fin: TIME_WAIT lasts 60 s, so
                        the socket count has stopped growing; 10 with rst]
  --steady-interval S   steady: refresh interval of the daemon              [1]
  --seed N              seed of the latency samples' random spacing         [1]
  --cpu-prof DIR        the daemons and their rule runners write JavaScript
                        CPU profiles into DIR/<phase>-<sensor>/ (figures then
                        include the profiler's cost); read them with
                        bun bench/profile-summary.ts DIR/...
  --sockwarden PATH     sockwarden executable                [dist/sockwarden]
  --max-minutes M       limit for the whole suite                          [20]
  --out DIR             where daemon-<date>.md/.json go        [bench/results]
  --no-save             print the tables only
  -h, --help            this text
`;

export const DAEMON_ARG_CONFIG = {
  phases: { type: "string" },
  sensors: { type: "string" },
  resync: { type: "string" },
  intervals: { type: "string" },
  samples: { type: "string" },
  sockets: { type: "string" },
  "churn-rate": { type: "string" },
  "churn-close": { type: "string" },
  seconds: { type: "string" },
  warmup: { type: "string" },
  "steady-interval": { type: "string" },
  seed: { type: "string" },
  "cpu-prof": { type: "string" },
  sockwarden: { type: "string" },
  "max-minutes": { type: "string" },
  out: { type: "string" },
  "no-save": { type: "boolean" },
  inner: { type: "boolean" },
  deadline: { type: "string" },
  help: { type: "boolean", short: "h" },
} satisfies ParseArgsConfig["options"];

function numberIn(name: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new Error(`--${name} must be a number from ${min} to ${max} (got "${text}")`);
  }
  return n;
}

function count(name: string, text: string, min: number, max: number): number {
  const m = /^(\d+(?:\.\d+)?)([kK]?)$/.exec(text.trim());
  if (!m) throw new Error(`--${name} must be a whole number such as 10000 or 10k (got "${text}")`);
  const n = Math.round(Number(m[1]) * (m[2] ? 1000 : 1));
  if (n < min || n > max) throw new Error(`--${name} must be from ${min} to ${max} (got "${text}")`);
  return n;
}

export function parseDaemonOptions(argv: string[]): DaemonOptions {
  const { values } = parseArgs({ args: argv, options: DAEMON_ARG_CONFIG, strict: true, allowPositionals: false });

  const phases: DaemonPhase[] = [];
  for (const w of (values.phases ?? DAEMON_PHASES.join(",")).split(",").map((s) => s.trim()).filter(Boolean)) {
    if (!(DAEMON_PHASES as readonly string[]).includes(w)) {
      throw new Error(`unknown phase "${w}" (choose from ${DAEMON_PHASES.join(", ")})`);
    }
    if (!phases.includes(w as DaemonPhase)) phases.push(w as DaemonPhase);
  }
  if (phases.length === 0) throw new Error("--phases is empty");

  const intervals = [
    ...new Set((values.intervals ?? "1,0.1").split(",").map((s) => s.trim()).filter(Boolean).map((s) => numberIn("intervals", s, 0.1, 60))),
  ];
  if (intervals.length === 0) throw new Error("--intervals is empty");

  const churnClose = values["churn-close"] ?? "fin";
  if (churnClose !== "fin" && churnClose !== "rst") throw new Error(`--churn-close must be fin or rst (got "${churnClose}")`);

  const maxMinutes = numberIn("max-minutes", values["max-minutes"] ?? "20", 0.1, 24 * 60);
  const deadline = values.deadline !== undefined ? Number(values.deadline) : Date.now() + maxMinutes * 60_000;
  if (!Number.isFinite(deadline)) throw new Error("bad --deadline");

  return {
    phases,
    sensors: parseSensors(values.sensors ?? SENSORS.join(",")),
    resync: numberIn("resync", values.resync ?? String(DEFAULT_RESYNC_S), 1, 3600),
    intervals,
    samples: count("samples", values.samples ?? "200", 1, 100_000),
    sockets: count("sockets", values.sockets ?? "10k", 0, 400_000),
    churnRate: numberIn("churn-rate", values["churn-rate"] ?? "500", 0, 5000),
    churnClose,
    seconds: numberIn("seconds", values.seconds ?? "60", 5, 3600),
    // With a normal close every connection leaves a TIME_WAIT socket for 60 s: the socket count
    // (and the daemon's work) only stops growing after that.
    warmup: numberIn("warmup", values.warmup ?? (churnClose === "fin" ? "65" : "10"), 0, 600),
    steadyInterval: numberIn("steady-interval", values["steady-interval"] ?? "1", 0.1, 60),
    seed: count("seed", values.seed ?? "1", 0, 2 ** 31),
    cpuProf: values["cpu-prof"] === undefined ? null : path.resolve(values["cpu-prof"]),
    exe: path.resolve(values.sockwarden ?? path.join(REPO_ROOT, "dist", "sockwarden")),
    maxMinutes,
    outDir: path.resolve(values.out ?? path.join(BENCH_DIR, "results")),
    save: values["no-save"] !== true,
    deadline,
    inner: values.inner === true,
    help: values.help === true,
  };
}

/**
 * For `bun bench/run.ts --suite all`: the options of the whole command line the daemon suite
 * shares with the others (--sockwarden, --max-minutes, --out, --no-save, --sensors, --resync).
 */
export function daemonArgsFromShared(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const name = a.replace(/=.*$/, "");
    if (name === "--no-save") out.push(a);
    else if (name === "--max-minutes" || name === "--out" || name === "--sockwarden" || name === "--sensors" || name === "--resync") {
      if (a.includes("=")) out.push(a);
      else if (i + 1 < argv.length) out.push(a, argv[++i]!);
    }
  }
  return out;
}

/** `bun bench/run.ts --suite daemon ...`: the daemon suite's own arguments, or null for another suite. */
export function daemonSuiteArgs(argv: readonly string[]): string[] | null {
  const out: string[] = [];
  let daemon = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--suite" && argv[i + 1] === "daemon") {
      daemon = true;
      i++;
    } else if (a === "--suite=daemon") daemon = true;
    else out.push(a);
  }
  return daemon ? out : null;
}
