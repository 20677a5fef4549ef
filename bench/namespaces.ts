// Namespaces benchmark: `sockwarden list -a --all-namespaces --json`, one process that dumps every
// network namespace (setns + sock_diag inside each), against a loop of `ip netns exec NS ss -tanp`
// over K namespaces, in the same run, with N loopback connections held in each namespace.
//
//   sudo bun bench/namespaces.ts [--namespaces 20] [--connections 500] [--runs 7] [--no-save]
//   sudo bun bench/run.ts --suite namespaces [same options]
//
// This process creates the benchmark's own namespace (sw-bench-<pid>-ns) and K namespaces
// (sw-bench-<pid>-ns01 …), re-runs itself inside the own one (the measuring half,
// bench/lib/namespaces-measure.ts, which starts one connection holder per namespace), and deletes
// every namespace afterwards: on success, on error, on SIGINT/SIGTERM/SIGHUP and when the time
// budget runs out. See bench/README.md.
import { PYTHON } from "./lib/helper.ts";
import { TIME_BIN } from "./lib/proc.ts";
import { namespaceNames, runNamespacesOuter } from "./lib/namespaces-netns.ts";
import { NAMESPACES_USAGE, parseNamespacesOptions, type NamespacesOptions } from "./lib/namespaces-options.ts";
import { runNamespacesInner } from "./lib/namespaces-measure.ts";

export { NAMESPACES_USAGE, namespacesSuiteArgs } from "./lib/namespaces-options.ts";

const SCRIPT = import.meta.path;

function fail(msg: string): number {
  process.stderr.write(`[bench:namespaces] ${msg}\n${NAMESPACES_USAGE}`);
  return 2;
}

/** The whole suite from its own arguments (also called by bench/run.ts --suite namespaces). */
export async function runNamespacesSuite(args: string[]): Promise<number> {
  let opts: NamespacesOptions;
  try {
    opts = parseNamespacesOptions(args);
  } catch (e) {
    return fail(e instanceof Error ? e.message : String(e));
  }
  if (opts.help) {
    process.stdout.write(NAMESPACES_USAGE);
    return 0;
  }
  if (opts.inner) {
    const own = process.env.SW_BENCH_NETNS ?? "";
    const targets = (process.env.SW_BENCH_NS_TARGETS ?? "").split(",").filter(Boolean);
    return runNamespacesInner(opts, own, targets);
  }
  if (args.includes("--deadline")) return fail("--deadline is internal");
  return runNamespacesOuter({
    set: namespaceNames(process.pid, opts.namespaces),
    script: SCRIPT,
    args,
    deadline: opts.deadline,
    required: [
      ["ip", "iproute2"],
      ["ss", "iproute2"],
      ["nsenter", "util-linux"],
      ["sh", "dash"],
      [PYTHON, "python3"],
      [TIME_BIN, "time"],
    ],
  });
}

if (import.meta.main) process.exitCode = await runNamespacesSuite(process.argv.slice(2));
