/**
 * The rule API's declarations as text, for `rules init` to write next to a user's rules and for
 * the type checker: sockwarden.d.ts itself, which Bun embeds in the executable.
 */
// tsc takes an import for the module it names, and refuses a declaration file as a value; Bun
// reads this one as text.
// @ts-expect-error TS2846: a declaration file imported as text
import text from "./sockwarden.d.ts" with { type: "text" };

export const RULE_API_DECLARATIONS: string = text;
