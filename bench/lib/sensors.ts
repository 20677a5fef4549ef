// Which sensors a suite measures (`--sensors poll,ebpf`), what the executable offers, and the
// command-line words that pick a sensor. The eBPF sensor may be unavailable (no capabilities, no
// tracefs, an old kernel, an executable without it): the suite then reports why in the ebpf
// column instead of failing, and never counts a run that fell back to polling as an eBPF figure.
import { run } from "./proc.ts";

export const SENSORS = ["poll", "ebpf"] as const;
export type Sensor = (typeof SENSORS)[number];

/** Seconds between full snapshots with the eBPF sensor (`--resync`), unless told otherwise. */
export const DEFAULT_RESYNC_S = 30;

export interface SensorSupport {
  /** The command (watch or run) takes --sensor at all. */
  sensorOption: boolean;
  /** The command takes --resync SECONDS. */
  resync: boolean;
  /** Why `--sensor ebpf` cannot be measured here, or null when it runs. */
  ebpfUnavailable: string | null;
}

/** The note the executable prints when it falls back to polling, or null. */
export function fallbackNote(stderr: string): string | null {
  const m = /eBPF sensor unavailable:?\s*([^\n]*)/.exec(stderr);
  return m ? (m[1]!.trim() || "unavailable") : null;
}

/**
 * What `exe COMMAND` offers, read from its --help, and whether the eBPF sensor starts: a short
 * `watch --sensor ebpf` in the current network namespace, whose stderr says so when it falls back.
 */
export async function probeSensors(exe: string, command: "watch" | "run", wanted: readonly Sensor[]): Promise<SensorSupport> {
  const help = await run([exe, command, "--help"], 20_000);
  const text = help.stdout + help.stderr;
  const support: SensorSupport = {
    sensorOption: /--sensor\b/.test(text),
    resync: /--resync\b/.test(text),
    ebpfUnavailable: null,
  };
  if (!wanted.includes("ebpf")) return support;
  if (!support.sensorOption) {
    support.ebpfUnavailable = `\`${command}\` of this executable has no --sensor option`;
    return support;
  }
  const probe = await run([exe, "watch", "--sensor", "ebpf", "--ndjson", "--duration", "1"], 30_000);
  const note = fallbackNote(probe.stderr);
  if (note) support.ebpfUnavailable = note;
  else if (!probe.ok) {
    support.ebpfUnavailable = `watch --sensor ebpf failed: ${probe.stderr.trim().split("\n")[0] || `exit ${probe.exitCode ?? probe.signal}`}`;
  }
  return support;
}

/** Words that pick the sensor; with eBPF, the resync period too when the executable has one. */
export function sensorArgs(sensor: Sensor, support: SensorSupport, resyncS: number | null): string[] {
  if (!support.sensorOption) return [];
  const words = ["--sensor", sensor];
  if (sensor === "ebpf" && support.resync && resyncS !== null) words.push("--resync", String(resyncS));
  return words;
}

/** One line for the reports: what the ebpf runs did between snapshots. */
export function resyncNote(support: SensorSupport, resyncS: number | null): string {
  if (support.resync && resyncS === null) {
    return "ebpf runs take the default resync period: a full snapshot every 30 s, or less often where one would take over 1% of the time; events from the sensor in between";
  }
  return support.resync
    ? `ebpf runs take --resync ${resyncS}: a full snapshot every ${resyncS} s, events from the sensor in between`
    : "this executable has no --resync: with the eBPF sensor it still takes a full snapshot every interval";
}
