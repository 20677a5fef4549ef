// Command-line options of bench/watch.ts (the watch suite).
import path from "node:path";
import { COMMON_USAGE, parseSuiteArgs, standIn, type CommonOptions, type OptionConfig, type SuiteDefaults } from "./suite-options.ts";
import { SENSORS, type Sensor } from "./sensors.ts";

export const WATCH_TOOL_KEYS = ["sockwarden", "ss"] as const;
export type WatchToolKey = (typeof WATCH_TOOL_KEYS)[number];

export interface WatchOptions extends CommonOptions {
  /** Socket counts to measure at; each is held as sockets / 2 connections. */
  sockets: number[];
  /** Length of the measuring window per tool and size, seconds. */
  seconds: number;
  /** Seconds between starting the watch command and the first CPU sample. */
  warmup: number;
  /** Refresh interval of both sides, seconds. */
  interval: number;
  tools: WatchToolKey[];
  /** Sensors of the sockwarden side, each measured on its own (a stand-in command runs once). */
  sensors: Sensor[];
  /** Seconds between full snapshots with the eBPF sensor (--resync, where the executable has it). */
  resync: number | null;
  /** Where the measured watch runs write CPU profiles (BUN_OPTIONS=--cpu-prof), or null. */
  cpuProf: string | null;
  /** Short-lived connections made in the short-connection phase; 0 for none. */
  short: number;
  /** The executable (for the short-connection phase and probing), or null with --watch-cmd. */
  watchExe: string | null;
  /** The watch command as given to the --duration placeholder expansion (see watchCommand). */
  watchCmdTemplate: string[];
  /** True when --watch-cmd replaced the real executable (a stand-in for testing). */
  placeholder: boolean;
  /** Limit for each ss run, ms. */
  timeoutMs: number;
}

export const WATCH_USAGE = `Usage: bun bench/watch.ts [options]      (as root)

CPU cost of \`sockwarden watch --ndjson\` refreshing once per second over idle loopback
TCP sockets held in a private network namespace, compared with running \`ss -tanpi\`
once per second over the same sockets.

Options:
  --sockets LIST        socket counts, e.g. 10000,100000 or 10k,100k     [10k,100k]
                        (held as LIST/2 established loopback connections)
  --seconds S           measuring window per tool and size               [20]
  --warmup S            watch: seconds from start to the first sample;
                        ss: one extra run before the loop                 [5]
  --interval S          refresh interval of both sides                    [1]
  --tools LIST          subset of sockwarden,ss                           [all]
  --sensors LIST        sockwarden's sensors, each measured on its own:
                        subset of poll,ebpf (an unavailable ebpf sensor
                        is reported in its column, not failed)       [poll,ebpf]
  --resync S|default    ebpf: seconds between full snapshots (passed as
                        --resync where the executable has it; the ebpf
                        window is then at least this long); default: not
                        passed, the executable's own period is measured
                        (the ebpf window is then at least 60 s, 150 s
                        from 50k sockets up)                         [default]
  --cpu-prof DIR        the measured watch runs write JavaScript CPU profiles
                        into DIR/<size>-<sensor>/ (figures then include the
                        profiler's cost); read them with
                        bun bench/profile-summary.ts DIR/...
  --short N             short-lived connections (1-5 ms) made by a process
                        that lives on, per sensor, after the sizes; 0: none [200]
  --watch-cmd CMD       measure CMD instead of
                        "PATH watch --ndjson --interval I --duration D"
                        (quoted words allowed, no shell; {duration} and
                        {interval} are replaced), e.g.
                        "sh -c 'while sleep 1; do cat /proc/net/tcp >/dev/null; done'"
  --timeout S           limit for each ss run, seconds                    [60]
${COMMON_USAGE}  (--max-minutes: 15; --quick: --sockets 2k --seconds 3 --warmup 1 --short 20
   --resync 5)
`;

export const WATCH_ARG_CONFIG = {
  sockets: { type: "string" },
  seconds: { type: "string" },
  warmup: { type: "string" },
  interval: { type: "string" },
  tools: { type: "string" },
  sensors: { type: "string" },
  resync: { type: "string" },
  short: { type: "string" },
  "cpu-prof": { type: "string" },
  "watch-cmd": { type: "string" },
  timeout: { type: "string" },
} as const satisfies OptionConfig;

const DEFAULTS: SuiteDefaults = {
  normal: {
    sockets: "10k,100k",
    seconds: "20",
    warmup: "5",
    interval: "1",
    tools: WATCH_TOOL_KEYS.join(","),
    sensors: SENSORS.join(","),
    resync: "default",
    short: "200",
    timeout: "60",
    "max-minutes": "15",
  },
  quick: { sockets: "2k", seconds: "3", warmup: "1", short: "20", resync: "5", "max-minutes": "5" },
};

/** Seconds the watch command is asked to run: warm-up, window, and a little slack. */
export function watchDuration(o: Pick<WatchOptions, "warmup" | "seconds">): number {
  return Math.ceil(o.warmup + o.seconds + 2);
}

/**
 * The command line to start, with {duration} and {interval} filled in, and `extra` (the sensor's
 * words) after it; `seconds` overrides the window (an eBPF window spans a whole resync period).
 */
export function watchCommand(o: WatchOptions, extra: string[] = [], seconds = o.seconds): string[] {
  const d = String(watchDuration({ warmup: o.warmup, seconds }));
  const i = String(o.interval);
  return [...o.watchCmdTemplate.map((w) => w.replaceAll("{duration}", d).replaceAll("{interval}", i)), ...extra];
}

export function parseWatchOptions(argv: string[]): WatchOptions {
  const a = parseSuiteArgs(argv, WATCH_ARG_CONFIG, DEFAULTS);
  const standin = standIn(a, "watch-cmd");
  const cpuProf = a.opt("cpu-prof");
  return {
    ...a.common,
    sockets: a.counts("sockets", 2, 400_000),
    seconds: a.number("seconds", 2, 3600),
    warmup: a.number("warmup", 0, 600),
    interval: a.number("interval", 0.1, 60),
    tools: a.subset("tools", WATCH_TOOL_KEYS),
    sensors: a.subset("sensors", SENSORS),
    resync: a.resync(),
    short: Math.round(a.number("short", 0, 100_000)),
    cpuProf: cpuProf === undefined ? null : path.resolve(cpuProf),
    watchExe: standin ? null : a.common.exe,
    watchCmdTemplate: standin ?? [a.common.exe, "watch", "--ndjson", "--interval", "{interval}", "--duration", "{duration}"],
    placeholder: standin !== null,
    timeoutMs: a.number("timeout", 0.1, 3600) * 1000,
  };
}
