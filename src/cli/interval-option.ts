/**
 * `--interval`, which `watch`, `live`, `run` and plain `sockwarden` share, so that all four check
 * it alike and quote what was typed when they refuse it.
 */
import { numberOption, parseNumberOption, type NumberRule } from "./number-option.ts";

export const INTERVAL_RULE: NumberRule = { min: 0.1, max: 3600, unit: "seconds" };

export function intervalOption(describe: string, withDefault = true) {
  return { alias: "i", ...numberOption({ describe, ...(withDefault ? { default: 1 } : {}) }) } as const;
}

/** Seconds between refreshes; `fallback` where none was given. */
export function parseInterval(given: unknown, fallback = 1): number {
  return given === undefined ? fallback : parseNumberOption("--interval", given, INTERVAL_RULE);
}
