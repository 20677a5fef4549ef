/**
 * The `--sensor` and `--resync` options `watch`, `live` and `run` share, with their checks, so
 * that the three say the same thing about them.
 */
import { DEFAULT_RESYNC_MS, MAX_RESYNC_MS, MIN_RESYNC_MS, RESYNC_TIME_SHARE } from "../monitor/monitor-loop.ts";
import { DEFAULT_SENSOR, SENSOR_CHOICES } from "../monitor/sensor-choice.ts";
import { numberOption, parseNumberOption } from "./number-option.ts";

export const MIN_RESYNC_S = MIN_RESYNC_MS / 1000;
export const MAX_RESYNC_S = MAX_RESYNC_MS / 1000;
export const DEFAULT_RESYNC_S = DEFAULT_RESYNC_MS / 1000;

export const SENSOR_HELP =
  "Where changes come from. auto (default): TCP state changes from the kernel as they happen (eBPF; root or CAP_BPF + CAP_PERFMON, CAP_SYS_ADMIN before Linux 5.8), polling with one note where that cannot run; ebpf: the same, but an error (exit 5) where it cannot run; poll: snapshots every interval only";

export const sensorOption = { type: "string", choices: SENSOR_CHOICES, default: DEFAULT_SENSOR, describe: SENSOR_HELP } as const;

/** For `run`, where the configuration's `sensor` applies unless the command line says otherwise. */
export const runSensorOption = { type: "string", choices: SENSOR_CHOICES, describe: `${SENSOR_HELP}; default auto, or sensor in --config` } as const;

/** `between` says what each interval's refresh dumps between two full snapshots. */
export function resyncOption(between: string) {
  return numberOption({
    describe: `With the eBPF sensor running: seconds between full snapshots (${MIN_RESYNC_S} to ${MAX_RESYNC_S}; default ${DEFAULT_RESYNC_S}, or longer where one is slow, so that they take at most ${RESYNC_TIME_SHARE * 100}% of the time), which set right anything the sensor missed; changes the sensor lost bring one at once. ${between} No effect when polling (--sensor poll, or auto where the sensor cannot run): every interval then takes a full snapshot`,
  });
}

/** The resync period in seconds, checked; the default where none was given. */
export function checkResync(given: unknown): number {
  if (given === undefined) return DEFAULT_RESYNC_S;
  return parseNumberOption("--resync", given, { min: MIN_RESYNC_S, max: MAX_RESYNC_S, unit: "seconds" });
}
