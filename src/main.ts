/**
 * Entry point of the executable. The daemon and `rules test` start one child of this same
 * executable per rule, with a hidden first argument, to hold that rule's sandbox; everything
 * else is the command line. Either side is loaded only when it is the one asked for.
 */
import { RUNNER_ARGUMENT } from "./rules/runner/runner-argument.ts";

if (process.argv[2] === RUNNER_ARGUMENT) {
  import("./rules/runner/runner-child.ts").then(
    (m) => m.serveRuleRunner(),
    (err: unknown) => {
      process.stderr.write(`rule runner failed to start: ${(err as Error)?.message ?? String(err)}\n`);
      process.exit(70);
    },
  );
} else {
  import("./cli/main.ts").then(
    (m) => m.main(process.argv.slice(2)).then((code) => process.exit(code), (err) => process.exit(m.reportError(err))),
    (err: unknown) => {
      process.stderr.write(`sockwarden: internal error: ${(err as Error)?.message ?? String(err)}\n`);
      process.exit(70);
    },
  );
}
