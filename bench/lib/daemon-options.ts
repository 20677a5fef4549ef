// Command-line options of bench/daemon.ts (the daemon suite; also `bun bench/run.ts --suite daemon`).
import path from "node:path";
import { COMMON_USAGE, parseSuiteArgs, type CommonOptions, type OptionConfig, type SuiteDefaults } from "./suite-options.ts";
import { SENSORS, type Sensor } from "./sensors.ts";

export const DAEMON_PHASES = ["latency", "steady"] as const;
export type DaemonPhase = (typeof DAEMON_PHASES)[number];
export type ChurnClose = "fin" | "rst";

export interface DaemonOptions extends CommonOptions {
  phases: DaemonPhase[];
  /** Sensors measured side by side, each in every phase. */
  sensors: Sensor[];
  /** Seconds between full snapshots with the eBPF sensor (--resync of the executable, where it has one). */
  resync: number | null;
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
  --resync S|default    ebpf: seconds between full snapshots (passed as
                        --resync where the executable has it); default:
                        not passed, the executable's own period     [default]
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
${COMMON_USAGE}  (--max-minutes: 20; --quick: --intervals 1 --samples 10 --sockets 1k
   --churn-rate 50 --churn-close rst --seconds 5 --warmup 2)
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
} satisfies OptionConfig;

const DEFAULTS: SuiteDefaults = {
  normal: {
    phases: DAEMON_PHASES.join(","),
    sensors: SENSORS.join(","),
    resync: "default",
    intervals: "1,0.1",
    samples: "200",
    sockets: "10k",
    "churn-rate": "500",
    "churn-close": "fin",
    seconds: "60",
    "steady-interval": "1",
    seed: "1",
    "max-minutes": "20",
  },
  quick: { intervals: "1", samples: "10", sockets: "1k", "churn-rate": "50", "churn-close": "rst", seconds: "5", warmup: "2", "max-minutes": "5" },
};

export function parseDaemonOptions(argv: string[]): DaemonOptions {
  const a = parseSuiteArgs(argv, DAEMON_ARG_CONFIG, DEFAULTS);
  const intervals = [...new Set(a.list("intervals").map((s) => a.number("intervals", 0.1, 60, s)))];
  if (intervals.length === 0) throw new Error("--intervals is empty");
  const churnClose = a.oneOf("churn-close", ["fin", "rst"] as const);
  const cpuProf = a.opt("cpu-prof");
  return {
    ...a.common,
    phases: a.subset("phases", DAEMON_PHASES),
    sensors: a.subset("sensors", SENSORS),
    resync: a.resync(),
    intervals,
    samples: a.count("samples", 1, 100_000),
    sockets: a.count("sockets", 0, 400_000),
    churnRate: a.number("churn-rate", 0, 5000),
    churnClose,
    seconds: a.number("seconds", 5, 3600),
    // With a normal close every connection leaves a TIME_WAIT socket for 60 s: the socket count
    // (and the daemon's work) only stops growing after that.
    warmup: a.number("warmup", 0, 600, a.opt("warmup") ?? (churnClose === "fin" ? "65" : "10")),
    steadyInterval: a.number("steady-interval", 0.1, 60),
    seed: a.count("seed", 0, 2 ** 31),
    cpuProf: cpuProf === undefined ? null : path.resolve(cpuProf),
  };
}

