// List benchmark: sockwarden list -a --json vs ss -tanp, netstat -tanp, lsof -nP -i over the
// same N established loopback TCP connections in a private network namespace.
//
//   sudo bun bench/run.ts [--sizes 1k,10k,30k] [--runs 7] [--sockwarden-cmd 'cat /proc/net/tcp']
//
// This process creates the namespace sw-bench-<pid>, re-runs itself inside it with
// `nsenter --net=/run/netns/<ns>` (the measuring half, bench/lib/inner.ts, whose children are the
// measured tools themselves), and deletes the namespace afterwards: on success, on error, on
// SIGINT/SIGTERM/SIGHUP and when the time budget runs out. See bench/README.md.
import { parseOptions, USAGE, type Options } from "./lib/options.ts";
import { createNetns, deleteNetns, deleteNetnsSync, netnsPath, NS_PREFIX, staleNamespaces } from "./lib/netns.ts";
import { runInner } from "./lib/inner.ts";
import { PYTHON } from "./lib/helper.ts";
import { TIME_BIN } from "./lib/proc.ts";

const log = (msg: string): void => {
  process.stderr.write(`[bench] ${msg}\n`);
};

async function runOuter(opts: Options): Promise<number> {
  if (process.getuid?.() !== 0) {
    log("must run as root (it creates a network namespace); try: sudo bun bench/run.ts");
    return 2;
  }
  const required: [string, string][] = [
    ["ip", "iproute2"],
    ["nsenter", "util-linux"],
    [PYTHON, "python3"],
    [TIME_BIN, "time"],
  ];
  for (const [need, pkg] of required) {
    if (!Bun.which(need)) {
      log(`required program not found: ${need} (Debian package: ${pkg})`);
      return 2;
    }
  }
  for (const tool of ["ss", "netstat", "lsof"] as const) {
    if (opts.tools.includes(tool) && !Bun.which(tool)) {
      log(`warning: ${tool} not found; its rows will be reported as failed (apt-get install ${tool === "ss" ? "iproute2" : tool === "netstat" ? "net-tools" : "lsof"})`);
    }
  }
  const stale = staleNamespaces();
  if (stale.length) {
    log(`note: namespaces left by earlier interrupted runs: ${stale.join(", ")} (remove with: ip netns del NAME)`);
  }

  const ns = `${NS_PREFIX}${process.pid}`;
  // Last resort if something below escapes the finally block.
  process.on("exit", () => deleteNetnsSync(ns));

  let child: Bun.Subprocess | null = null;
  let signalled: string | null = null;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (!child) {
      signalled = sig;
      return;
    }
    if (signalled) {
      // Second signal: do not wait any longer.
      child.kill("SIGKILL");
      return;
    }
    signalled = sig;
    log(`${sig}: stopping`);
    child.kill(sig === "SIGHUP" ? "SIGTERM" : sig);
    const c = child;
    setTimeout(() => c.kill("SIGKILL"), 15_000).unref();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("SIGHUP", onSignal);

  try {
    await createNetns(ns);
    if (signalled) return 130;
    log(`created network namespace ${ns}`);

    const argv = process.argv.slice(2).filter((a) => a !== "--inner");
    child = Bun.spawn({
      cmd: [
        "nsenter",
        `--net=${netnsPath(ns)}`,
        "--",
        process.execPath,
        import.meta.path,
        ...argv,
        "--inner",
        "--deadline",
        String(opts.deadline),
      ],
      stdin: "ignore",
      stdout: "inherit",
      stderr: "inherit",
      env: { ...process.env, SW_BENCH_NETNS: ns },
    });
    // The measuring half stops itself at the deadline; past it (plus grace), end it.
    const graceMs = Math.max(0, opts.deadline - Date.now()) + 60_000;
    const c = child;
    const term = setTimeout(() => {
      log("time budget exceeded: stopping the measuring process");
      c.kill("SIGTERM");
      setTimeout(() => c.kill("SIGKILL"), 15_000).unref();
    }, graceMs);
    term.unref();
    const code = await child.exited;
    clearTimeout(term);
    if (signalled) return 130;
    return code ?? 1;
  } catch (e) {
    log(`error: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  } finally {
    const err = await deleteNetns(ns);
    if (err) log(`could not delete namespace ${ns}: ${err}`);
    else log(`deleted network namespace ${ns}`);
  }
}

async function main(): Promise<number> {
  let opts: Options;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (e) {
    log(e instanceof Error ? e.message : String(e));
    process.stderr.write(USAGE);
    return 2;
  }
  if (opts.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (opts.inner) return runInner(opts, process.env.SW_BENCH_NETNS ?? "(unknown)");
  return runOuter(opts);
}

process.exitCode = await main();
