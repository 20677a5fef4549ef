/** The hidden first argument that makes the executable a rule runner (see runner-child.ts). */
export const RUNNER_ARGUMENT = "__sockwarden-rule-runner";
