// The outer half of a benchmark suite: checks, the private network namespace, and a re-run of the
// suite's own script inside it (`nsenter --net=/run/netns/<ns>`), whose children are the measured
// tools. The namespace is deleted in every case: success, error, SIGINT/SIGTERM/SIGHUP and when
// the time budget runs out.
import { SignalRelay } from "./measuring-half.ts";
import { createNetns, deleteNetns, deleteNetnsSync, netnsPath, staleNamespaces } from "./netns.ts";

const log = (msg: string): void => {
  process.stderr.write(`[bench] ${msg}\n`);
};

export interface OuterSpec {
  /** Namespace to create (must start with NS_PREFIX so stale ones can be found). */
  netns: string;
  /** Script re-run inside the namespace with `--inner --deadline MS` appended. */
  script: string;
  args: string[];
  /** Absolute end of the suite (epoch ms); the inner half stops itself there. */
  deadline: number;
  /** Programs that must exist, with the Debian package that provides each. */
  required: [program: string, pkg: string][];
  /** Programs whose absence only fails their own rows: warn and go on. */
  optional: [program: string, pkg: string][];
  /** How to run this suite, for the "must run as root" message. */
  usageHint: string;
}

/** Returns the exit status: the inner half's, 130 after a signal, 1 or 2 on setup problems. */
export async function runOuter(spec: OuterSpec): Promise<number> {
  if (process.getuid?.() !== 0) {
    log(`must run as root (it creates a network namespace); try: sudo ${spec.usageHint}`);
    return 2;
  }
  for (const [need, pkg] of spec.required) {
    if (!Bun.which(need)) {
      log(`required program not found: ${need} (Debian package: ${pkg})`);
      return 2;
    }
  }
  for (const [tool, pkg] of spec.optional) {
    if (!Bun.which(tool)) log(`warning: ${tool} not found; its rows will be reported as failed (apt-get install ${pkg})`);
  }
  const stale = staleNamespaces();
  if (stale.length) {
    log(`note: namespaces left by earlier interrupted runs: ${stale.join(", ")} (remove with: ip netns del NAME)`);
  }

  const ns = spec.netns;
  // Last resort if something below escapes the finally block.
  const onExit = (): void => deleteNetnsSync(ns);
  process.on("exit", onExit);

  const relay = new SignalRelay(log);

  try {
    await createNetns(ns);
    if (relay.signalled) return 130;
    log(`created network namespace ${ns}`);

    return await relay.run(ns, spec, { SW_BENCH_NETNS: ns });
  } catch (e) {
    log(`error: ${e instanceof Error ? e.message : String(e)}`);
    return relay.signalled ? 130 : 1;
  } finally {
    const err = await deleteNetns(ns);
    if (err) log(`could not delete namespace ${ns}: ${err}`);
    else log(`deleted network namespace ${ns}`);
    relay.dispose();
    process.off("exit", onExit);
  }
}
