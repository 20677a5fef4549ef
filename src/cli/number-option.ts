/**
 * Number options checked as the user typed them. yargs's own `type: "number"` turns `abc` into
 * NaN before any check sees it, so a refusal could only say "not NaN"; these options are read as
 * text and parsed here, and a refusal quotes what was given.
 */
import { UsageError } from "../errors.ts";

export interface NumberRule {
  /** Whole numbers only. */
  integer?: boolean;
  min?: number;
  /** Exclusive lower bound, for "above 0". */
  above?: number;
  max?: number;
  /** How the value is counted, for the message: "milliseconds", "seconds". */
  unit?: string;
}

/** What the option takes, in words: "a whole number from 1 up", "a number of seconds from 0.1 to 3600". */
export function numberRuleText(rule: NumberRule): string {
  const what = rule.integer ? `a whole number${rule.unit ? ` of ${rule.unit}` : ""}` : `a number${rule.unit ? ` of ${rule.unit}` : ""}`;
  if (rule.above !== undefined) return `${what} above ${rule.above}${rule.max !== undefined ? ` up to ${rule.max}` : ""}`;
  if (rule.min !== undefined && rule.max !== undefined) return `${what} from ${rule.min} to ${rule.max}`;
  if (rule.min !== undefined) return `${what} from ${rule.min} up`;
  if (rule.max !== undefined) return `${what} up to ${rule.max}`;
  return what;
}

/**
 * One value of `option` (e.g. "--pid"), as given on the command line. An option given more than
 * once has each value checked and the last one applies, as a later word overrides an earlier one.
 */
export function parseNumberOption(option: string, given: unknown, rule: NumberRule): number {
  if (Array.isArray(given)) {
    const values = given.map((g) => parseNumberOption(option, g, rule));
    if (values.length > 0) return values[values.length - 1]!;
  }
  const text = typeof given === "string" ? given.trim() : String(given);
  // Number("") is 0 and Number("0x10") is 16: only plain decimal text is a number here.
  const value = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(text) ? Number(text) : NaN;
  const ok =
    Number.isFinite(value) &&
    (!rule.integer || Number.isSafeInteger(value)) &&
    (rule.min === undefined || value >= rule.min) &&
    (rule.above === undefined || value > rule.above) &&
    (rule.max === undefined || value <= rule.max);
  if (!ok) throw new UsageError(`${option} takes ${numberRuleText(rule)}, not '${typeof given === "string" ? given : String(given)}'`);
  return value;
}

/**
 * A yargs option of numbers: typed as text, so that the command's check (parseNumberOption, in
 * the command's own code, where a refusal is a UsageError) sees what was typed.
 */
export function numberOption(spec: { describe: string; array?: boolean; /** Applied by the command when the option is absent. */ default?: number }) {
  return {
    type: "string" as const,
    ...(spec.array ? { array: true as const } : {}),
    // Shown, not set: the command applies it, as a number.
    ...(spec.default !== undefined ? { defaultDescription: String(spec.default) } : {}),
    describe: spec.describe,
  };
}

/** Every value of a repeated number option. */
export function parseNumberOptions(option: string, given: readonly unknown[] | undefined, rule: NumberRule): number[] {
  return (given ?? []).map((g) => parseNumberOption(option, g, rule));
}
