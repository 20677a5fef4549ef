// The measuring half: runs inside the benchmark's network namespace (entered with nsenter by
// bench/run.ts), so every tool is a direct child of this process and sees the same sockets.
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Options, ToolKey } from "./options.ts";
import { killMeasured, measure, type Measurement } from "./proc.ts";
import { hostInfo } from "./host.ts";
import { saveLatest } from "./results.ts";
import { heldFacts, holdConnections, waitNoSockets, type HeldConnections } from "./helper.ts";
import { MIB, max, median } from "./stats.ts";
import {
  addRatios,
  checkTarget,
  markdown,
  summarize,
  targetLine,
  textTable,
  type Report,
  type SizeResult,
  type ToolResult,
} from "./report.ts";

interface Tool {
  key: ToolKey;
  label: string;
  cmd: string[];
}

function toolList(opts: Options): Tool[] {
  const all: Record<ToolKey, Tool> = {
    sockwarden: {
      key: "sockwarden",
      label: opts.placeholder ? `[sockwarden] ${opts.sockwardenCmd.join(" ")}` : "sockwarden list -a --json",
      cmd: opts.sockwardenCmd,
    },
    ss: { key: "ss", label: "ss -tanp", cmd: ["ss", "-tanp"] },
    netstat: { key: "netstat", label: "netstat -tanp", cmd: ["netstat", "-tanp"] },
    lsof: { key: "lsof", label: "lsof -nP -i", cmd: ["lsof", "-nP", "-i"] },
  };
  return opts.tools.map((k) => all[k]);
}

const log = (msg: string): void => {
  process.stderr.write(`[bench] ${msg}\n`);
};

export async function runInner(opts: Options, netnsName: string): Promise<number> {
  const started = new Date();
  const tools = toolList(opts);
  let interrupted = false;
  let current: HeldConnections | null = null;
  const onSignal = (): void => {
    if (!interrupted) log("interrupted: stopping after the current command");
    interrupted = true;
    killMeasured();
    void current?.stop();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("SIGHUP", onSignal);

  const host = await hostInfo();
  const tmp = mkdtempSync(path.join(os.tmpdir(), "sw-bench-"));
  const rusageFile = path.join(tmp, "rusage");
  try {
    return await measureAll(opts, netnsName, tools, host, rusageFile, started, {
      interrupted: () => interrupted,
      setCurrent: (h) => {
        current = h;
      },
    });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

interface Control {
  interrupted(): boolean;
  setCurrent(h: HeldConnections | null): void;
}

async function measureAll(
  opts: Options,
  netnsName: string,
  tools: Tool[],
  host: Record<string, string | number | null>,
  rusageFile: string,
  started: Date,
  ctl: Control,
): Promise<number> {
  const remainingMs = (): number => opts.deadline - Date.now();

  // What the wrapper itself costs: /usr/bin/time running `true`.
  const base: Measurement[] = [];
  for (let i = 0; i < 5; i++) base.push(await measure(["true"], 5_000, false, rusageFile));
  const okBase = base.filter((m) => m.ok);
  const baseline = {
    cmd: "true",
    medianWallMs: median(okBase.map((m) => m.wallMs)),
    maxRssMiB: max(okBase.map((m) => (m.maxRssBytes ?? 0) / MIB)),
  };
  log(`namespace ${netnsName}; sizes ${opts.sizes.join(", ")}; ${opts.runs} runs each (first is warm-up)`);
  log(`sockwarden command: ${opts.sockwardenCmd.join(" ")}${opts.placeholder ? " (placeholder)" : ""}`);

  const sizes: SizeResult[] = [];
  for (const n of opts.sizes) {
    if (ctl.interrupted()) break;
    const size: SizeResult = {
      connections: n,
      expectedSockets: null,
      seen: null,
      helperWorkers: null,
      helperSetupMs: null,
      hostOpenFiles: null,
      loadavg: null,
      tools: tools.map(
        (t): ToolResult => ({ key: t.key, label: t.label, cmd: t.cmd, status: "skipped", warmup: null, runs: [], summary: null }),
      ),
    };
    sizes.push(size);

    if (remainingMs() < 10_000) {
      size.error = "time budget (--max-minutes) used up";
      for (const t of size.tools) t.error = size.error;
      continue;
    }

    const leftover = await waitNoSockets(15_000);
    if (leftover.total > 0) log(`warning: ${leftover.total} TCP sockets still present before size ${n}`);

    let held: HeldConnections;
    try {
      log(`size ${n}: opening connections…`);
      held = await holdConnections(n, Math.min(600, remainingMs() / 1000 + 30), Math.min(300_000, remainingMs()));
    } catch (e) {
      size.error = e instanceof Error ? e.message : String(e);
      for (const t of size.tools) t.error = size.error;
      log(`size ${n}: ${size.error}`);
      continue;
    }
    ctl.setCurrent(held);
    const facts = await heldFacts(held);
    Object.assign(size, facts);
    log(
      `size ${n}: host has ${size.hostOpenFiles ?? "?"} open files (all processes), load ${size.loadavg}`,
    );
    log(
      `size ${n}: ready in ${(held.setupMs / 1000).toFixed(1)} s, ${held.workers} holder process(es); ` +
        `${facts.seen.total} TCP sockets in namespace (expected ${held.sockets}: ${facts.seen.established} established, ${facts.seen.listen} listening)`,
    );
    if (facts.seen.total !== held.sockets) {
      log(`size ${n}: warning: socket count differs from expected`);
    }

    try {
      const active = new Set(tools.map((t) => t.key));
      for (let r = 0; r < opts.runs && !ctl.interrupted(); r++) {
        // Rotate the order each round so no tool always runs right after the same other one.
        const order = tools.map((_, i) => tools[(i + r) % tools.length]!);
        for (const tool of order) {
          if (ctl.interrupted()) break;
          if (!active.has(tool.key)) continue;
          const res = size.tools.find((t) => t.key === tool.key)!;
          if (!held.alive()) {
            size.error = "connection holder exited early";
            break;
          }
          const left = remainingMs();
          if (left < 2_000) {
            size.error = "time budget (--max-minutes) used up";
            break;
          }
          const warm = r === 0;
          // Warm-up output goes through a pipe so its lines can be counted as a sanity check.
          const budgetCapped = left - 1_000 < opts.timeoutMs;
          const m: Measurement = await measure(
            tool.cmd,
            Math.min(opts.timeoutMs, left - 1_000),
            warm || opts.stdout === "pipe",
            rusageFile,
          );
          // A command cut short by the interruption or the overall budget says nothing about the tool.
          if (ctl.interrupted() && !m.ok) break;
          if (m.timedOut && budgetCapped) {
            size.error = "time budget (--max-minutes) used up";
            break;
          }
          if (warm) {
            res.warmup = m;
            if (!m.ok) {
              res.status = "failed";
              res.error = m.error;
              active.delete(tool.key);
              log(`size ${n}: ${tool.label}: FAILED: ${m.error}`);
            } else {
              res.status = "ok";
            }
          } else {
            res.runs.push(m);
            if (!m.ok) res.error ??= m.error;
          }
        }
        if (size.error) break;
        if (r > 0) {
          const line = size.tools
            .filter((t) => active.has(t.key))
            .map((t) => {
              const last = t.runs[t.runs.length - 1];
              return `${t.key} ${last?.ok ? last.wallMs.toFixed(0) + "ms" : "fail"}`;
            })
            .join(", ");
          log(`size ${n}: run ${r}/${opts.runs - 1}: ${line}`);
        }
      }
    } finally {
      await held.stop();
      ctl.setCurrent(null);
    }

    const notRun = size.error ?? (ctl.interrupted() ? "interrupted" : "not run");
    for (const t of size.tools) {
      if (t.status === "ok") {
        if (t.runs.length === 0) {
          t.status = "skipped";
          t.error ??= notRun;
          continue;
        }
        t.summary = summarize(t.runs);
        if (t.summary.okRuns === 0) t.status = "failed";
      } else if (t.status === "skipped") {
        t.error ??= notRun;
      }
    }
    addRatios(size);
    if (size.error) log(`size ${n}: ${size.error}`);
  }

  const placeholderCmd = opts.sockwardenCmd.join(" ");
  const report: Report = {
    kind: "sockwarden-bench-list",
    version: 1,
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    interrupted: ctl.interrupted(),
    netns: netnsName,
    host,
    baseline,
    options: {
      sizes: opts.sizes,
      runs: opts.runs,
      warmupRuns: 1,
      timeoutMs: opts.timeoutMs,
      stdout: opts.stdout,
      sockwardenCmd: opts.sockwardenCmd,
      placeholder: opts.placeholder,
    },
    sizes,
    target: checkTarget(opts.sizes, sizes, opts.tools, opts.placeholder, placeholderCmd),
  };

  process.stdout.write("\n" + textTable(report) + "\n\n" + targetLine(report.target) + "\n");
  if (ctl.interrupted()) {
    process.stdout.write("(interrupted: partial results, nothing saved)\n");
    return 130;
  }
  if (opts.save && !saveLatest(opts.outDir, "list", markdown(report), report, log)) return 1;
  return sizes.some((s) => s.error) ? 1 : 0;
}
