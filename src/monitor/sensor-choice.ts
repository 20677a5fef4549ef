/**
 * How a monitor learns of changes: "poll" compares snapshots only; "ebpf" and "auto" also take
 * state changes as the kernel reports them where the engine has a sensor. "auto" falls back to
 * polling with a note where the sensor cannot run; "ebpf" is an explicit request and fails
 * instead, as a tool asked for a driver it cannot load does.
 */
export const SENSOR_CHOICES = ["poll", "ebpf", "auto"] as const;
export type SensorChoice = (typeof SENSOR_CHOICES)[number];

export const DEFAULT_SENSOR: SensorChoice = "auto";

export function isSensorChoice(value: unknown): value is SensorChoice {
  return typeof value === "string" && (SENSOR_CHOICES as readonly string[]).includes(value);
}

/** Whether the monitor should start the engine's sensor. */
export function wantsTransitions(choice: SensorChoice): boolean {
  return choice !== "poll";
}

/** Whether a sensor that cannot run is an error rather than a note and polling. */
export function requiresSensor(choice: SensorChoice): boolean {
  return choice === "ebpf";
}
