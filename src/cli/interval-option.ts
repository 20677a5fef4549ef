/**
 * `--interval`, which `watch`, `live`, `run` and plain `sockwarden` share, so that all four check
 * it alike, with the bounds the refresh loop keeps (as the configuration's `interval` is), and
 * quote what was typed when they refuse it.
 */
import { MAX_INTERVAL_MS, MIN_INTERVAL_MS } from "../monitor/monitor-loop.ts";
import { numberOption, parseNumberOption, type NumberRule } from "./number-option.ts";

export const INTERVAL_RULE: NumberRule = { min: MIN_INTERVAL_MS / 1000, max: MAX_INTERVAL_MS / 1000, unit: "seconds" };

/** The option, its help saying the bounds; `whose` names whose refreshes (e.g. "Live view"). */
export function intervalOption(whose = "", withDefault = true) {
  const describe = `${whose ? `${whose}: seconds` : "Seconds"} between refreshes (${INTERVAL_RULE.min} to ${INTERVAL_RULE.max}${withDefault ? "" : "; default 1"})`;
  return { alias: "i", ...numberOption({ describe, ...(withDefault ? { default: 1 } : {}) }) } as const;
}

/** Seconds between refreshes; `fallback` where none was given. */
export function parseInterval(given: unknown, fallback = 1): number {
  return given === undefined ? fallback : parseNumberOption("--interval", given, INTERVAL_RULE);
}
