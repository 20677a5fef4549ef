// Daemon benchmark: `sockwarden run` in a private network namespace.
//  - latency: how long after connect() a client that is not a mail server sees its connection to
//    port 25 aborted by smtp-guard, at each refresh interval (median, p95, p99, max);
//  - steady: CPU and RSS of the daemon with every bundled plugin loaded, over idle loopback
//    sockets and a steady stream of short connections.
//
//   sudo bun bench/daemon.ts [--intervals 1,0.1] [--samples 200] [--sockets 10k] [--seconds 60] [--quick]
//
// Hooks on the suite skeleton (bench/lib/skeleton.ts): its namespace is sw-bench-<pid>-daemon,
// its measuring half bench/lib/daemon-inner.ts. See bench/README.md.
import { runSuite, NAMESPACE_TOOLS, type SuiteHooks } from "./lib/skeleton.ts";
import { DAEMON_USAGE, parseDaemonOptions, type DaemonOptions } from "./lib/daemon-options.ts";
import { runDaemonInner } from "./lib/daemon-inner.ts";

export const DAEMON_SUITE: SuiteHooks<DaemonOptions> = {
  name: "daemon",
  script: import.meta.path,
  usage: DAEMON_USAGE,
  parse: parseDaemonOptions,
  needs: () => ({ required: [...NAMESPACE_TOOLS, ["getconf", "libc-bin"]] }),
  measure: (o, run) => runDaemonInner(o, run.netns, run.invocation),
};

if (import.meta.main) process.exitCode = await runSuite(DAEMON_SUITE, process.argv.slice(2));
