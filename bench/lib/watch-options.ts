// Command-line options of bench/watch.ts (the watch suite).
import { parseArgs, type ParseArgsConfig } from "node:util";
import path from "node:path";
import { BENCH_DIR, REPO_ROOT, splitCommand } from "./options.ts";
import { DEFAULT_RESYNC_S, parseSensors, SENSORS, type Sensor } from "./sensors.ts";

export const WATCH_TOOL_KEYS = ["sockwarden", "ss"] as const;
export type WatchToolKey = (typeof WATCH_TOOL_KEYS)[number];

export interface WatchOptions {
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
  resync: number;
  /** Where the measured watch runs write CPU profiles (BUN_OPTIONS=--cpu-prof), or null. */
  cpuProf: string | null;
  /** Short-lived connections made in the short-connection phase; 0 for none. */
  short: number;
  /** The executable (for the short-connection phase and probing), or null with --watch-cmd. */
  exe: string | null;
  /** The watch command as given to the --duration placeholder expansion (see watchCommand). */
  watchCmdTemplate: string[];
  /** True when --watch-cmd replaced the real executable (a stand-in for testing). */
  placeholder: boolean;
  /** Limit for each ss run, ms. */
  timeoutMs: number;
  maxMinutes: number;
  outDir: string;
  save: boolean;
  /** Set by the outer process: absolute end of the whole run (epoch ms). */
  deadline: number;
  inner: boolean;
  help: boolean;
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
  --resync S            ebpf: seconds between full snapshots (passed as
                        --resync where the executable has it; the ebpf
                        window is then at least this long)                [30]
  --cpu-prof DIR        the measured watch runs write JavaScript CPU profiles
                        into DIR/<size>-<sensor>/ (figures then include the
                        profiler's cost); read them with
                        bun bench/profile-summary.ts DIR/...
  --short N             short-lived connections (1-5 ms) made by a process
                        that lives on, per sensor, after the sizes; 0: none [200]
  --sockwarden PATH     sockwarden executable                [dist/sockwarden]
  --watch-cmd CMD       measure CMD instead of
                        "PATH watch --ndjson --interval I --duration D"
                        (quoted words allowed, no shell; {duration} and
                        {interval} are replaced), e.g.
                        "sh -c 'while sleep 1; do cat /proc/net/tcp >/dev/null; done'"
  --timeout S           limit for each ss run, seconds                    [60]
  --max-minutes M       limit for the whole run                           [15]
  --out DIR             where watch-<date>.md/.json go         [bench/results]
  --no-save             print the tables only
  -h, --help            this text
`;

export const WATCH_ARG_CONFIG = {
  sockets: { type: "string", default: "10k,100k" },
  seconds: { type: "string", default: "20" },
  warmup: { type: "string", default: "5" },
  interval: { type: "string", default: "1" },
  tools: { type: "string", default: WATCH_TOOL_KEYS.join(",") },
  sensors: { type: "string", default: SENSORS.join(",") },
  resync: { type: "string", default: String(DEFAULT_RESYNC_S) },
  short: { type: "string", default: "200" },
  "cpu-prof": { type: "string" },
  sockwarden: { type: "string" },
  "watch-cmd": { type: "string" },
  timeout: { type: "string", default: "60" },
  "max-minutes": { type: "string", default: "15" },
  out: { type: "string" },
  "no-save": { type: "boolean", default: false },
  inner: { type: "boolean", default: false },
  deadline: { type: "string" },
  help: { type: "boolean", short: "h", default: false },
} as const satisfies ParseArgsConfig["options"];

function parseCount(word: string): number {
  const m = /^(\d+(?:\.\d+)?)([kK]?)$/.exec(word.trim());
  if (!m) throw new Error(`bad socket count "${word}" (use e.g. 10000 or 10k)`);
  const n = Math.round(Number(m[1]) * (m[2] ? 1000 : 1));
  if (!Number.isInteger(n) || n < 2 || n > 400_000) {
    throw new Error(`socket count ${word} out of range (2..400000)`);
  }
  return n;
}

function numberIn(name: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new Error(`--${name} must be a number between ${min} and ${max} (got "${text}")`);
  }
  return n;
}

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
  const { values } = parseArgs({ args: argv, strict: true, allowPositionals: false, options: WATCH_ARG_CONFIG });

  const sockets = values.sockets.split(",").filter((w) => w.trim() !== "").map(parseCount);
  if (sockets.length === 0) throw new Error("--sockets is empty");

  const tools: WatchToolKey[] = [];
  for (const w of values.tools.split(",").map((s) => s.trim()).filter(Boolean)) {
    if (!(WATCH_TOOL_KEYS as readonly string[]).includes(w)) {
      throw new Error(`unknown tool "${w}" for the watch suite (choose from ${WATCH_TOOL_KEYS.join(", ")})`);
    }
    if (!tools.includes(w as WatchToolKey)) tools.push(w as WatchToolKey);
  }
  if (tools.length === 0) throw new Error("--tools is empty");

  let watchCmdTemplate: string[];
  let placeholder = false;
  let exe: string | null = null;
  if (values["watch-cmd"] !== undefined) {
    watchCmdTemplate = splitCommand(values["watch-cmd"]);
    if (watchCmdTemplate.length === 0) throw new Error("--watch-cmd is empty");
    placeholder = true;
  } else {
    exe = path.resolve(values.sockwarden ?? path.join(REPO_ROOT, "dist", "sockwarden"));
    watchCmdTemplate = [exe, "watch", "--ndjson", "--interval", "{interval}", "--duration", "{duration}"];
  }

  const maxMinutes = numberIn("max-minutes", values["max-minutes"], 0.1, 24 * 60);
  const deadline =
    values.deadline !== undefined ? Number(values.deadline) : Date.now() + maxMinutes * 60_000;
  if (!Number.isFinite(deadline)) throw new Error("bad --deadline");

  return {
    sockets,
    seconds: numberIn("seconds", values.seconds, 2, 3600),
    warmup: numberIn("warmup", values.warmup, 0, 600),
    interval: numberIn("interval", values.interval, 0.1, 60),
    tools,
    sensors: parseSensors(values.sensors),
    resync: numberIn("resync", values.resync, 1, 3600),
    short: Math.round(numberIn("short", values.short, 0, 100_000)),
    cpuProf: values["cpu-prof"] === undefined ? null : path.resolve(values["cpu-prof"]),
    exe,
    watchCmdTemplate,
    placeholder,
    timeoutMs: numberIn("timeout", values.timeout, 0.1, 3600) * 1000,
    maxMinutes,
    outDir: path.resolve(values.out ?? path.join(BENCH_DIR, "results")),
    save: !values["no-save"],
    deadline,
    inner: values.inner,
    help: values.help,
  };
}
