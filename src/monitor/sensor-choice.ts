/**
 * How a monitor learns of changes: "poll" compares snapshots only; "ebpf" and "auto" also take
 * state changes as the kernel reports them where the engine has a sensor, and fall back to
 * polling with a note where it cannot run.
 */
export const SENSOR_CHOICES = ["poll", "ebpf", "auto"] as const;
export type SensorChoice = (typeof SENSOR_CHOICES)[number];

export const DEFAULT_SENSOR: SensorChoice = "poll";

export function isSensorChoice(value: unknown): value is SensorChoice {
  return typeof value === "string" && (SENSOR_CHOICES as readonly string[]).includes(value);
}

/** Whether the monitor should start the engine's sensor. */
export function wantsTransitions(choice: SensorChoice): boolean {
  return choice !== "poll";
}
