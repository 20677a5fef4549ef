// Memory per loaded rule, measured in a fresh process (started by bench/rules.ts) so that nothing
// the throughput runs left behind is counted: N copies of smtp-guard, each compiled from its own
// file with its own name (a rule set refuses two rules of one name), loaded one after another
// into one RuleSet. Resident set size is read from /proc/self/status after a full collection,
// before the first rule, after each rule, after every rule has handled some events, and after
// the rule set is disposed. Each sandbox's WebAssembly memory is RuleSet.loaded[i].memoryBytes.
//
//   bun bench/lib/rules-memory.ts COPIES EVENTS  -> one JSON object (MemoryResult) on stdout
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { runnersRssBytes } from "./child-usage.ts";
import { readVm } from "../../test/support/proc-usage.ts";
import { RuleSet } from "../../src/rules/rule-set.ts";
import { EventStream } from "./rules-events.ts";

export interface MemoryResult {
  copies: number;
  eventsPerRule: number;
  /** RSS (bytes) before any rule, then after each of the N loads. */
  rssBaseline: number;
  rssAfterEach: number[];
  rssAfterEvents: number;
  rssAfterDispose: number;
  /** JavaScript heap of the host (bytes), before and after loading. */
  heapBaseline: number;
  heapLoaded: number;
  /** WebAssembly memory of each sandbox (bytes), after loading and after the events. */
  wasmLoaded: number[];
  wasmAfterEvents: number[];
  /** Time to compile and load each copy, ms. */
  loadMs: number[];
}

function rssBytes(): number {
  return readVm(process.pid)?.rss ?? process.memoryUsage().rss;
}

/** The host's resident memory plus its rule runners' (one process per rule). */
async function settled(rules?: RuleSet): Promise<number> {
  Bun.gc(true);
  await Bun.sleep(50);
  Bun.gc(true);
  return rssBytes() + (rules ? runnersRssBytes(rules) : 0);
}

export async function measureMemory(copies: number, eventsPerRule: number): Promise<MemoryResult> {
  const plugin = path.resolve(import.meta.dir, "..", "..", "plugins", "smtp-guard.ts");
  const source = readFileSync(plugin, "utf8");
  const namePattern = /name:\s*"smtp-guard"/;
  if (!namePattern.test(source)) throw new Error(`${plugin}: cannot find name: "smtp-guard" to rename the copies`);
  const dir = mkdtempSync(path.join(os.tmpdir(), "sw-bench-rules-"));
  try {
    const files: string[] = [];
    for (let i = 1; i <= copies; i++) {
      const file = path.join(dir, `smtp-guard-${String(i).padStart(2, "0")}.ts`);
      writeFileSync(file, source.replace(namePattern, `name: "smtp-guard-${String(i).padStart(2, "0")}"`));
      files.push(file);
    }
    const stream = new EventStream(7);
    const events = stream.next(eventsPerRule);
    const heapBaseline = (Bun.gc(true), process.memoryUsage().heapUsed);
    const rssBaseline = await settled();
    const rules = new RuleSet();
    const rssAfterEach: number[] = [];
    const loadMs: number[] = [];
    for (const file of files) {
      const t0 = performance.now();
      await rules.add({ kind: "file", path: file, label: file });
      loadMs.push(performance.now() - t0);
      rssAfterEach.push(await settled(rules));
    }
    const heapLoaded = process.memoryUsage().heapUsed;
    const wasmLoaded = rules.loaded.map((r) => r.memoryBytes);
    if (new Set(rules.names).size !== copies) throw new Error("the copies did not load under distinct names");
    await rules.dispatch(events);
    const rssAfterEvents = await settled(rules);
    const wasmAfterEvents = rules.loaded.map((r) => r.memoryBytes);
    rules.dispose();
    const rssAfterDispose = await settled();
    return {
      copies, eventsPerRule, rssBaseline, rssAfterEach, rssAfterEvents, rssAfterDispose,
      heapBaseline, heapLoaded, wasmLoaded, wasmAfterEvents, loadMs,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs the measurement in a child process and returns its result. */
export async function measureMemoryInChild(copies: number, eventsPerRule: number, timeoutMs: number): Promise<MemoryResult> {
  const proc = Bun.spawn([process.execPath, import.meta.path, String(copies), String(eventsPerRule)], {
    stdout: "pipe",
    stderr: "pipe",
    cwd: path.resolve(import.meta.dir, "..", ".."),
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  try {
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    if (code !== 0) throw new Error(`the memory measurement failed (exit ${code}): ${err.trim().split("\n").slice(-3).join(" / ") || "no output"}`);
    return JSON.parse(out) as MemoryResult;
  } finally {
    clearTimeout(timer);
  }
}

if (import.meta.main) {
  const copies = Number(process.argv[2] ?? "20");
  const events = Number(process.argv[3] ?? "10000");
  const result = await measureMemory(copies, events);
  process.stdout.write(JSON.stringify(result) + "\n");
}
