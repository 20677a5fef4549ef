// The namespaces suite's measuring half. It runs inside the benchmark's own namespace (entered
// with nsenter by bench/namespaces.ts), starts one connection holder in each benchmark namespace,
// and times, round after round, `sockwarden list -a --all-namespaces --json` against a shell loop
// of `ip netns exec NS ss -tanp` over the benchmark namespaces. Both are children of this process.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { firstLine, killMeasured, measure, run, type Measurement } from "./proc.ts";
import { hostInfo, hostOpenFiles } from "./host.ts";
import { saveLatest } from "./results.ts";
import { MIB, max, median } from "./stats.ts";
import type { NamespacesOptions } from "./namespaces-options.ts";
import { hostNamespaceCount } from "./namespaces-netns.ts";
import { countTcpOf, startHolder, type Holder } from "./namespaces-holders.ts";
import {
  censusLines,
  censusOf,
  checkTarget,
  markdown,
  summarizeSide,
  targetLine,
  textTable,
  type NamespacesReport,
  type PhaseResult,
  type SideResult,
} from "./namespaces-report.ts";

const log = (msg: string): void => {
  process.stderr.write(`[bench:namespaces] ${msg}\n`);
};

/** The loop as one would type it; run by sh over the namespace names given as arguments. */
export const LOOP_TEXT = 'for ns in NS...; do ip netns exec "$ns" ss -tanp > /dev/null; done';
const LOOP_SCRIPT = 'for ns in "$@"; do ip netns exec "$ns" ss -tanp > /dev/null || exit $?; done';
/** The warm-up loop keeps each namespace's output to count its lines. */
const LOOP_KEEP_SCRIPT = 'd=$1; shift; for ns in "$@"; do ip netns exec "$ns" ss -tanp > "$d/$ns" || exit $?; done';
/** The warm-up sockwarden run keeps its output (exec: same process, so ru_maxrss stays its own). */
const KEEP_SCRIPT = 'f=$1; shift; exec "$@" > "$f"';

interface Control {
  interrupted(): boolean;
  deadline: number;
}

async function sockwardenBuild(exe: string): Promise<{ version: string | null; built: string | null }> {
  const r = await run([exe, "--version"], 10_000);
  let built: string | null = null;
  try {
    built = statSync(exe).mtime.toISOString();
  } catch {
    // reported as unknown
  }
  return { version: r.ok ? firstLine(r.stdout) || null : null, built };
}

function lineCount(file: string): number {
  const text = readFileSync(file, "utf8");
  if (!text) return 0;
  let n = 0;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) n++;
  return text.endsWith("\n") ? n : n + 1;
}

interface PhaseSpec {
  name: "empty" | "loaded";
  runs: number;
  connectionsPerNs: number;
  holders: Holder[];
}

async function measurePhase(
  spec: PhaseSpec,
  opts: NamespacesOptions,
  own: string,
  targets: string[],
  tmp: string,
  ctl: Control,
): Promise<PhaseResult> {
  const rusageFile = path.join(tmp, "rusage");
  const listing = path.join(tmp, "listing.json");
  const ssDir = path.join(tmp, "ss");
  mkdirSync(ssDir, { recursive: true });

  const sw: SideResult = {
    key: "sockwarden",
    label: opts.placeholder ? `[stand-in] ${opts.sockwardenCmd.join(" ")}` : "sockwarden list -a --all-namespaces --json",
    cmd: opts.sockwardenCmd,
    status: "skipped",
    warmup: null,
    runs: [],
    summary: null,
  };
  const loop: SideResult = {
    key: "ss-loop",
    label: `ip netns exec NS ss -tanp, ${targets.length} namespaces in turn`,
    cmd: ["sh", "-c", LOOP_SCRIPT, "sh", ...targets],
    status: "skipped",
    warmup: null,
    runs: [],
    summary: null,
  };
  const phase: PhaseResult = {
    name: spec.name,
    connectionsPerNs: spec.connectionsPerNs,
    runs: spec.runs,
    expectedPerNs: null,
    procCounts: null,
    holderSetupMs: null,
    hostOpenFiles: await hostOpenFiles(),
    hostNamespaces: hostNamespaceCount(),
    loadavg: os.loadavg().map((x) => x.toFixed(2)).join(" "),
    loadavgAfter: null,
    census: null,
    censusAfter: null,
    ssLines: null,
    sides: [sw, loop],
    rounds: [],
    ratio: null,
  };
  if (spec.holders.length) {
    phase.expectedPerNs = spec.holders[0]!.sockets;
    phase.holderSetupMs = Math.max(...spec.holders.map((h) => h.setupMs));
    phase.procCounts = [];
    for (const h of spec.holders) {
      const c = await countTcpOf(h.pid);
      phase.procCounts.push({ netns: h.netns, total: c?.total ?? 0, established: c?.established ?? 0, listen: c?.listen ?? 0, other: c?.other ?? 0 });
      if (!c || c.total !== h.sockets) log(`${spec.name}: warning: ${h.netns} has ${c?.total ?? "?"} TCP sockets, expected ${h.sockets}`);
    }
  }
  log(
    `${spec.name}: host has ${phase.hostNamespaces} network namespaces, ${phase.hostOpenFiles ?? "?"} open files, load ${phase.loadavg}`,
  );

  const remaining = (): number => ctl.deadline - Date.now();
  const active = new Set<SideResult>([sw, loop]);
  try {
    for (let r = 0; r < spec.runs && !ctl.interrupted(); r++) {
      const warm = r === 0;
      phase.rounds.push({ round: r, hostOpenFiles: await hostOpenFiles(), hostNamespaces: hostNamespaceCount(), load1: os.loadavg()[0]! });
      const order = r % 2 === 0 ? [sw, loop] : [loop, sw];
      for (const side of order) {
        if (ctl.interrupted() || !active.has(side)) continue;
        if (spec.holders.some((h) => !h.alive())) {
          phase.error = "a connection holder exited early";
          break;
        }
        const left = remaining();
        if (left < 3_000) {
          phase.error = "time budget (--max-minutes) used up";
          break;
        }
        const limit = Math.min(opts.timeoutMs, left - 2_000);
        const budgetCapped = limit < opts.timeoutMs;
        let cmd = side.cmd;
        if (warm && side === sw) cmd = ["sh", "-c", KEEP_SCRIPT, "sh", listing, ...opts.sockwardenCmd];
        if (warm && side === loop) {
          rmSync(ssDir, { recursive: true, force: true });
          mkdirSync(ssDir);
          cmd = ["sh", "-c", LOOP_KEEP_SCRIPT, "sh", ssDir, ...targets];
        }
        const m: Measurement = await measure(cmd, limit, false, rusageFile);
        if (ctl.interrupted() && !m.ok) break;
        if (m.timedOut && budgetCapped) {
          phase.error = "time budget (--max-minutes) used up";
          break;
        }
        if (warm) {
          side.warmup = m;
          if (!m.ok) {
            side.status = "failed";
            side.error = m.error;
            active.delete(side);
            log(`${spec.name}: ${side.label}: FAILED: ${m.error}`);
            continue;
          }
          side.status = "ok";
          if (side === sw) {
            try {
              phase.census = censusOf(listing, own, targets);
            } catch (e) {
              phase.censusError = firstLine(e instanceof Error ? e.message : String(e));
            }
          } else {
            phase.ssLines = targets.map((ns) => {
              try {
                return { netns: ns, lines: lineCount(path.join(ssDir, ns)) };
              } catch {
                return { netns: ns, lines: 0 };
              }
            });
          }
        } else {
          side.runs.push(m);
          if (!m.ok) side.error ??= m.error;
        }
      }
      if (phase.error || ctl.interrupted()) break;
      const shown = [sw, loop]
        .filter((s) => active.has(s))
        .map((s) => {
          const last = warm ? s.warmup : s.runs[s.runs.length - 1];
          return `${s.key} ${last?.ok ? last.wallMs.toFixed(0) + " ms" : "failed"}`;
        })
        .join(", ");
      log(`${spec.name}: ${warm ? "warm-up" : `run ${r}/${spec.runs - 1}`}: ${shown}`);
    }
    // One more listing after the measured runs: did the rest of the host change meanwhile?
    if (!ctl.interrupted() && !phase.error && active.has(sw) && remaining() > 5_000) {
      const cmd = ["sh", "-c", KEEP_SCRIPT, "sh", listing, ...opts.sockwardenCmd];
      const m = await measure(cmd, Math.min(opts.timeoutMs, remaining() - 2_000), false, rusageFile);
      if (m.ok) {
        try {
          phase.censusAfter = censusOf(listing, own, targets);
        } catch {
          // the warm-up's census error already says why
        }
      }
    }
  } finally {
    rmSync(listing, { force: true });
  }

  const notRun = phase.error ?? (ctl.interrupted() ? "interrupted" : "not run");
  for (const s of phase.sides) {
    if (s.status === "ok") {
      if (s.runs.length === 0) {
        s.status = "skipped";
        s.error ??= notRun;
        continue;
      }
      s.summary = summarizeSide(s.runs);
      if (s.summary.okRuns === 0) s.status = "failed";
    } else if (s.status === "skipped") {
      s.error ??= notRun;
    }
  }
  const a = sw.summary?.medianMs ?? null;
  const b = loop.status === "ok" ? loop.summary?.medianMs ?? null : null;
  phase.ratio = a !== null && b ? a / b : null;
  phase.loadavgAfter = os.loadavg().map((x) => x.toFixed(2)).join(" ");
  if (phase.error) log(`${spec.name}: ${phase.error}`);
  return phase;
}

export async function runNamespacesInner(opts: NamespacesOptions, own: string, targets: string[]): Promise<number> {
  if (targets.length !== opts.namespaces) {
    log(`expected ${opts.namespaces} benchmark namespaces from the outer half, got ${targets.length}`);
    return 2;
  }
  const started = new Date();
  let interrupted = false;
  const holders: Holder[] = [];
  const onSignal = (): void => {
    if (!interrupted) log("interrupted: stopping");
    interrupted = true;
    killMeasured();
    for (const h of holders) void h.stop();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("SIGHUP", onSignal);
  const ctl: Control = { interrupted: () => interrupted, deadline: opts.deadline };

  const host = await hostInfo();
  const build = opts.placeholder ? { version: null, built: null } : await sockwardenBuild(opts.sockwardenCmd[0]!);
  const tmp = mkdtempSync(path.join(os.tmpdir(), "sw-bench-ns-"));
  const phases: PhaseResult[] = [];
  let setupError: string | null = null;
  let baseline: NamespacesReport["baseline"] = { cmd: "true", medianWallMs: null, maxRssMiB: null };
  try {
    const base: Measurement[] = [];
    for (let i = 0; i < 5; i++) base.push(await measure(["true"], 5_000, false, path.join(tmp, "rusage")));
    const okBase = base.filter((m) => m.ok);
    baseline = {
      cmd: "true",
      medianWallMs: median(okBase.map((m) => m.wallMs)),
      maxRssMiB: max(okBase.map((m) => (m.maxRssBytes ?? 0) / MIB)),
    };
    log(
      `measuring from ${own}; ${targets.length} namespaces × ${opts.connections} connections; ` +
        `${opts.runs} rounds loaded${opts.emptyRuns ? `, ${opts.emptyRuns} empty` : ""} (first of each is a warm-up)`,
    );
    log(`sockwarden command: ${opts.sockwardenCmd.join(" ")}${opts.placeholder ? " (stand-in)" : ""}`);

    if (opts.emptyRuns > 0 && !interrupted) {
      phases.push(await measurePhase({ name: "empty", runs: opts.emptyRuns, connectionsPerNs: 0, holders: [] }, opts, own, targets, tmp, ctl));
    }

    if (!interrupted && opts.deadline - Date.now() > 10_000) {
      log(`starting ${targets.length} connection holders…`);
      const lifetimeS = Math.min(600, (opts.deadline - Date.now()) / 1000 + 30);
      const readyMs = Math.min(120_000, opts.deadline - Date.now());
      const results = await Promise.allSettled(targets.map((ns) => startHolder(ns, opts.connections, lifetimeS, readyMs)));
      for (const r of results) if (r.status === "fulfilled") holders.push(r.value);
      const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
      if (interrupted) {
        // stopped below
      } else if (failed.length) {
        setupError = `${failed.length} holder(s) failed: ${firstLine(String(failed[0]!.reason instanceof Error ? failed[0]!.reason.message : failed[0]!.reason))}`;
        log(setupError);
      } else {
        log(
          `holders ready: ${holders.reduce((a, h) => a + h.sockets, 0)} sockets in ${holders.length} namespaces, ` +
            `slowest set up in ${(Math.max(...holders.map((h) => h.setupMs)) / 1000).toFixed(1)} s`,
        );
        phases.push(
          await measurePhase({ name: "loaded", runs: opts.runs, connectionsPerNs: opts.connections, holders }, opts, own, targets, tmp, ctl),
        );
      }
    } else if (!interrupted) {
      setupError = "time budget (--max-minutes) used up before the holders could start";
      log(setupError);
    }
  } finally {
    await Promise.all(holders.map((h) => h.stop()));
    rmSync(tmp, { recursive: true, force: true });
  }

  if (setupError && !phases.some((p) => p.name === "loaded")) {
    const failedSide = (key: SideResult["key"], label: string, cmd: string[]): SideResult => ({
      key,
      label,
      cmd,
      status: "skipped",
      error: setupError!,
      warmup: null,
      runs: [],
      summary: null,
    });
    phases.push({
      name: "loaded",
      connectionsPerNs: opts.connections,
      runs: opts.runs,
      expectedPerNs: null,
      procCounts: null,
      holderSetupMs: null,
      hostOpenFiles: null,
      hostNamespaces: null,
      loadavg: null,
      loadavgAfter: null,
      census: null,
      censusAfter: null,
      ssLines: null,
      rounds: [],
      sides: [
        failedSide("sockwarden", "sockwarden list -a --all-namespaces --json", opts.sockwardenCmd),
        failedSide("ss-loop", `ip netns exec NS ss -tanp, ${targets.length} namespaces in turn`, []),
      ],
      ratio: null,
      error: setupError,
    });
  }

  const options: NamespacesReport["options"] = {
    namespaces: opts.namespaces,
    connections: opts.connections,
    runs: opts.runs,
    emptyRuns: opts.emptyRuns,
    warmupRuns: 1,
    timeoutMs: opts.timeoutMs,
    sockwardenCmd: opts.sockwardenCmd,
    placeholder: opts.placeholder,
    loopCmd: LOOP_TEXT,
  };
  const report: NamespacesReport = {
    kind: "sockwarden-bench-namespaces",
    version: 1,
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    interrupted,
    ownNetns: own,
    targets,
    host,
    sockwarden: build,
    baseline,
    options,
    phases,
    target: checkTarget(phases, options, interrupted),
  };

  const out: string[] = ["", textTable(report), ""];
  for (const p of phases) out.push(`${p.name}:`, ...censusLines(report, p).map((l) => `  ${l}`));
  out.push("", targetLine(report.target), "");
  process.stdout.write(out.join("\n"));
  if (interrupted) {
    process.stdout.write("(interrupted: partial results, nothing saved)\n");
    return 130;
  }
  if (opts.save && !saveLatest(opts.outDir, "namespaces", markdown(report), report, log)) return 1;
  return phases.some((p) => p.error) ? 1 : 0;
}
