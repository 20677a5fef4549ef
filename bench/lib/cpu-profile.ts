// Reading a JavaScriptCore CPU profile (Chrome's .cpuprofile format) that the executable writes
// when started with BUN_OPTIONS="--cpu-prof --cpu-prof-dir=DIR": where the time went, by
// function, both self time (the function itself) and total time (with what it called).
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileLine {
  fn: string;
  /** Milliseconds of samples (count × the sampling interval), and the share of all samples. */
  ms: number;
  pct: number;
}

export interface ProfileSummary {
  file: string;
  sampledMs: number;
  self: ProfileLine[];
  total: ProfileLine[];
}

/** "name (file:line)" with the path cut to what follows src/ (or the file name). */
function label(n: ProfileNode): string {
  const f = n.callFrame;
  const name = f.functionName || "(anonymous)";
  if (!f.url) return name;
  const m = /\/(src\/.*)$/.exec(f.url) ?? /([^/]+)$/.exec(f.url);
  return `${name} (${m ? m[1] : f.url}:${f.lineNumber + 1})`;
}

export function summarizeProfile(file: string, top = 15): ProfileSummary {
  const p = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  // Samples are taken only while the thread runs JavaScript (or collects garbage), about once per
  // sampling interval: a long gap between two is idle time, not the earlier sample's. So each
  // sample counts for one interval (the median gap), never for the gap that follows it.
  const gaps = p.timeDeltas.filter((d) => d > 0).sort((a, b) => a - b);
  const intervalUs = gaps.length ? gaps[gaps.length >> 1]! : 1000;
  const selfUs = new Map<number, number>();
  for (const id of p.samples) selfUs.set(id, (selfUs.get(id) ?? 0) + intervalUs);
  const sampledUs = [...selfUs.values()].reduce((a, b) => a + b, 0) || 1;
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const self = new Map<string, number>();
  const total = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    self.set(label(node), (self.get(label(node)) ?? 0) + us);
    // Each function on the stack once (recursion would count twice otherwise).
    const onStack = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur);
      if (n) onStack.add(label(n));
    }
    for (const l of onStack) total.set(l, (total.get(l) ?? 0) + us);
  }
  const lines = (m: Map<string, number>): ProfileLine[] =>
    [...m.entries()]
      .filter(([fn]) => !/^\((root|program)\)$/.test(fn) || m === self)
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([fn, us]) => ({ fn, ms: us / 1000, pct: (100 * us) / sampledUs }));
  return { file, sampledMs: sampledUs / 1000, self: lines(self), total: lines(total) };
}

/** Every profile a directory holds. */
export function profilesIn(dir: string): string[] {
  try {
    return readdirSync(dir).filter((f) => f.endsWith(".cpuprofile")).map((f) => path.join(dir, f));
  } catch {
    return [];
  }
}

export function profileText(s: ProfileSummary): string {
  const fmt = (l: ProfileLine): string => `    ${l.pct.toFixed(1).padStart(5)}%  ${l.ms.toFixed(0).padStart(7)} ms  ${l.fn}`;
  return [
    `${path.basename(s.file)}: ${(s.sampledMs / 1000).toFixed(1)} s sampled`,
    "  self time:",
    ...s.self.map(fmt),
    "  total time (with callees):",
    ...s.total.map(fmt),
  ].join("\n");
}

/**
 * Environment that makes the executable (and the rule runners it starts, which inherit it) write a
 * CPU profile into `dir` when it exits.
 */
export function cpuProfileEnv(dir: string | null, sub: string): Record<string, string> | undefined {
  if (!dir) return undefined;
  const into = path.join(dir, sub);
  mkdirSync(into, { recursive: true });
  return { BUN_OPTIONS: `--cpu-prof --cpu-prof-dir=${into}` };
}
