/** Entry point of a rule runner when sockwarden runs from its sources (tests, development). */
import { serveRuleRunner } from "./runner-child.ts";

await serveRuleRunner();
