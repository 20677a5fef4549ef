// Namespaces benchmark: `sockwarden list -a --all-namespaces --json`, one process that dumps every
// network namespace (setns + sock_diag inside each), against a loop of `ip netns exec NS ss -tanp`
// over K namespaces, in the same run, with N loopback connections held in each namespace.
//
//   sudo bun bench/namespaces.ts [--namespaces 20] [--connections 500] [--runs 7] [--quick]
//   sudo bun bench/run.ts --suite namespaces [same options]
//
// Hooks on the suite skeleton (bench/lib/skeleton.ts), with an outer half of its own: it creates
// the benchmark's own namespace (sw-bench-<pid>-ns) and K namespaces (sw-bench-<pid>-ns01 …),
// re-runs itself inside the own one (the measuring half, bench/lib/namespaces-measure.ts, which
// starts one connection holder per namespace), and deletes every namespace afterwards: on
// success, on error, on SIGINT/SIGTERM/SIGHUP and when the time budget runs out.
import { runSuite, NAMESPACE_TOOLS, type SuiteHooks } from "./lib/skeleton.ts";
import { TIME_BIN } from "./lib/proc.ts";
import { namespaceNames, runNamespacesOuter } from "./lib/namespaces-netns.ts";
import { NAMESPACES_USAGE, parseNamespacesOptions, type NamespacesOptions } from "./lib/namespaces-options.ts";
import { runNamespacesInner } from "./lib/namespaces-measure.ts";

const REQUIRED = [...NAMESPACE_TOOLS, ["ss", "iproute2"], ["sh", "dash"], [TIME_BIN, "time"]] as [string, string][];

export const NAMESPACES_SUITE: SuiteHooks<NamespacesOptions> = {
  name: "namespaces",
  script: import.meta.path,
  usage: NAMESPACES_USAGE,
  parse: parseNamespacesOptions,
  needs: () => ({ required: REQUIRED }),
  outer: (o, args) =>
    runNamespacesOuter({ set: namespaceNames(process.pid, o.namespaces), script: import.meta.path, args, deadline: o.deadline, required: REQUIRED }),
  measure: (o, run) => runNamespacesInner(o, run.netns, (process.env.SW_BENCH_NS_TARGETS ?? "").split(",").filter(Boolean)),
};

if (import.meta.main) process.exitCode = await runSuite(NAMESPACES_SUITE, process.argv.slice(2));
