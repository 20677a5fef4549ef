/**
 * The daemon's memory ceiling (README, "Memory ceiling") held against a rule that tries to pass it
 * through its outputs: the hostile catalogue's output-flood rule, scaled up, runs in
 * `sockwarden run` every 0.1 s, each call raising thousands of fresh, distinct alerts and logs,
 * a thousand of them as long as a rule's text may be. Both sinks are stalled: standard output is
 * a FIFO nobody reads, and the file sink writes to a FIFO nobody reads either, so the folder and
 * both queues fill to their bounds and stay there. For about 20 s the resident memory of the
 * daemon and every process under it is sampled: it must stay under the stated ceiling and level
 * off, and what the sinks gave up on must be counted in /metrics, by reason, and told on stderr.
 *
 * Needs root (a private network namespace: its own metrics port and a small socket table) and a
 * built dist/sockwarden.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Netns, requireRoot } from "./helpers/netns.ts";
import { EXECUTABLE, REPO_ROOT, requireExecutable } from "./helpers/sockwarden.ts";

const FLOOD = path.join(REPO_ROOT, "test/fixtures/rules/hostile/63-output-flood.ts");
/** Per call: 500 long alerts and 500 long logs, 5000 short alerts; 6000 actions of the 10,000 allowed. */
const SCALED = "const PER_CALL = { long: 500, short: 5000 };";

/**
 * The ceiling as the README states it ("Memory ceiling"), for this configuration: one rule, the
 * default sandbox, the stdout and file sinks with their default bounds.
 *   base + rules × (sandbox.wasm_memory_mb + a rule process's own) + 2 × the outputs' bounds
 */
const BASE_MIB = 224;
const WASM_MEMORY_MIB = 48;
const RULE_PROCESS_MIB = 180;
/** Alert folder 8 MiB, stdout's buffer 4 MiB, the file sink's queue 16 MiB. */
const OUTPUT_BOUNDS_MIB = 8 + 4 + 16;
const CEILING_MIB = BASE_MIB + 1 * (WASM_MEMORY_MIB + RULE_PROCESS_MIB) + 2 * OUTPUT_BOUNDS_MIB;
/** The daemon's own process: its base and its outputs, without its rules' processes. */
const DAEMON_MIB = BASE_MIB + 2 * OUTPUT_BOUNDS_MIB;
/** How much the mean of the last third of the samples may exceed that of the middle third. */
const LEVEL_MIB = 40;
const SAMPLE_SECONDS = 20;
const METRICS = "127.0.0.1:9471";

let ns: Netns | undefined;
let dir: string;
let daemon: ChildProcess | null = null;
const held: number[] = [];

beforeAll(async () => {
  requireRoot();
  requireExecutable();
  ns = await Netns.create("mem");
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "sw-mem-"));
});

afterAll(async () => {
  if (daemon && daemon.exitCode === null && daemon.signalCode === null) daemon.kill("SIGKILL");
  for (const fd of held.splice(0)) fs.closeSync(fd);
  await ns?.dispose();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A FIFO with a reader that never reads: writers open it at once, then fill it and stall. */
function stalledFifo(name: string): string {
  const file = path.join(dir, name);
  const r = spawnSync("mkfifo", [file]);
  if (r.status !== 0) throw new Error(`mkfifo ${file}: ${r.stderr}`);
  held.push(fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK));
  return file;
}

/** Resident memory, in MiB, of a process and of all its descendants (threads share theirs). */
function rssMiB(root: number): { own: number; descendants: number } {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // Gone meanwhile.
    }
    // The name in parentheses may hold spaces and parentheses: fields resume after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(entry));
    children.set(ppid, list);
  }
  const rss = (pid: number) => {
    try {
      return Number(/^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;
    } catch {
      return 0; // Gone meanwhile.
    }
  };
  let descendants = 0;
  const todo = [...(children.get(root) ?? [])];
  while (todo.length > 0) {
    const pid = todo.pop()!;
    descendants += rss(pid);
    todo.push(...(children.get(pid) ?? []));
  }
  return { own: rss(root), descendants };
}

/** The daemon's metrics as name{labels} -> value. */
async function scrape(): Promise<Map<string, number>> {
  const r = await ns!.exec(["/usr/bin/python3", "-c", `import urllib.request;print(urllib.request.urlopen('http://${METRICS}/metrics', timeout=10).read().decode())`], { timeoutMs: 20_000 });
  if (r.code !== 0) throw new Error(`scraping the metrics failed: ${r.stderr}`);
  const out = new Map<string, number>();
  for (const line of r.stdout.split("\n")) {
    const m = /^(\S+) (\S+)$/.exec(line);
    if (m && !line.startsWith("#")) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

const peak = (xs: readonly number[]) => Math.max(...xs);
const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe("memory ceiling", { timeout: 180_000 }, () => {
  it("a rule flooding its outputs: memory stays under the stated ceiling and levels off; drops are counted and told", async () => {
    const source = fs.readFileSync(FLOOD, "utf8");
    const scaled = source.replace(/^const PER_CALL = .*$/m, SCALED);
    expect(scaled, "the flood rule's PER_CALL line to scale up").toContain(SCALED);
    const rule = path.join(dir, "output-flood.ts");
    fs.writeFileSync(rule, scaled);
    const out = stalledFifo("stdout.fifo");
    const sinkFile = stalledFifo("sink.fifo");
    const config = path.join(dir, "flood.toml");
    fs.writeFileSync(
      config,
      `interval = 0.1\naudit_log = "${path.join(dir, "audit.log")}"\nmetrics = "${METRICS}"\n` +
        `sinks = ["stdout", "file:${sinkFile}"]\n[rules]\nsources = ["${rule}"]\n` +
        // A loaded machine must not get the flood quarantined for its pace: this is about memory.
        `[sandbox]\ntime_budget_ms = 1000\n`,
    );

    const stdoutFd = fs.openSync(out, fs.constants.O_WRONLY);
    held.push(stdoutFd);
    let stderr = "";
    daemon = spawn("ip", ["netns", "exec", ns!.name, EXECUTABLE, "run", "--config", config], { stdio: ["ignore", stdoutFd, "pipe"] });
    daemon.stderr!.setEncoding("utf8");
    daemon.stderr!.on("data", (chunk: string) => {
      if (stderr.length < 64_000) stderr += chunk;
    });
    const end = performance.now() + 60_000;
    while (!/running /.test(stderr) && daemon.exitCode === null && performance.now() < end) await sleep(50);
    expect(stderr, "the daemon to start").toMatch(/sockwarden: running output-flood every 0\.1 s/);
    const pid = daemon.pid!;

    const samples: number[] = [];
    const own: number[] = [];
    const rules: number[] = [];
    const until = performance.now() + SAMPLE_SECONDS * 1000;
    while (performance.now() < until && daemon.exitCode === null) {
      const m = rssMiB(pid);
      own.push(m.own);
      rules.push(m.descendants);
      samples.push(m.own + m.descendants);
      await sleep(250);
    }
    const metrics = await scrape();
    const stopped = performance.now();
    daemon.kill("SIGTERM");
    while (daemon.exitCode === null && daemon.signalCode === null && performance.now() - stopped < 10_000) await sleep(50);
    const at = (n: number) => Math.round(n);
    const thirds = Math.floor(samples.length / 3);
    const middle = samples.slice(thirds, 2 * thirds);
    const last = samples.slice(2 * thirds);
    console.log(
      `memory-ceiling: ${samples.length} samples, peak ${at(peak(samples))} MiB (ceiling ${CEILING_MIB} MiB): ` +
        `the daemon's process ${at(peak(own))} MiB (${DAEMON_MIB} with its outputs), its rules' ${at(peak(rules))} MiB; ` +
        `mean of the middle third ${at(mean(middle))}, of the last ${at(mean(last))}; every 2 s: ${samples.filter((_, i) => i % 8 === 0).map(at).join(" ")}`,
    );
    const why = `RSS samples (MiB): ${samples.map(at).join(" ")}\nthe daemon's own: ${own.map(at).join(" ")}\nstderr:\n${stderr.slice(-4000)}`;
    expect(daemon.exitCode, `the daemon did not stop cleanly; ${why}`).toBe(0);

    // The flood did flow, all along: the rule was never stopped.
    const emitted = metrics.get('sockwarden_actions_total{rule="output-flood",action="alert",outcome="emitted"}') ?? 0;
    expect(emitted, why).toBeGreaterThan(50_000);
    expect(stderr, why).not.toMatch(/quarantined/);

    // Held: not growing, under the ceiling, and the daemon's own process under its share.
    expect(mean(last) - mean(middle), `grew by ${at(mean(last) - mean(middle))} MiB from the middle third to the last; ${why}`).toBeLessThan(LEVEL_MIB);
    expect(peak(samples), why).toBeLessThan(CEILING_MIB);
    expect(peak(own), why).toBeLessThan(DAEMON_MIB);

    // Each queue at most at its bound, the rest dropped and counted, by reason.
    const file = `file:${sinkFile}`;
    for (const sink of ["stdout", file]) {
      const bytes = metrics.get(`sockwarden_sink_queue_bytes{sink="${sink}"}`);
      const limit = metrics.get(`sockwarden_sink_queue_bytes_limit{sink="${sink}"}`);
      expect(bytes, `${sink} queue bytes; ${why}`).toBeDefined();
      expect(bytes!, sink).toBeLessThanOrEqual(limit!);
      expect(metrics.get(`sockwarden_sink_dropped_total{sink="${sink}",reason="overflow"}`) ?? 0, `${sink} overflow drops; ${why}`).toBeGreaterThan(1000);
    }
    expect(metrics.get('sockwarden_alert_folding{counter="bytes"}')!).toBeLessThanOrEqual(8 << 20);
    expect(metrics.get('sockwarden_alert_folding{counter="evicted"}')!).toBeGreaterThan(0);

    // Told: the start of each overflow once, and the counts (here: at stop) with their reason.
    const lines = stderr.split("\n");
    expect(lines.filter((l) => l === `sockwarden: ${file}: queue full (over its 16 MiB bound): dropping the oldest`), why).toHaveLength(1);
    expect(lines.filter((l) => l === "sockwarden: stdout: standard output is not being read: over its 4 MiB bound, dropping records"), why).toHaveLength(1);
    for (const sink of ["stdout", file]) {
      const counts = lines.filter((l) => l.startsWith(`sockwarden: ${sink}: `) && / record\(s\) dropped in the last \d+ s, \d+ in all: /.test(l));
      expect(counts.length, `${sink}: no count of its drops; ${why}`).toBeGreaterThan(0);
      const told = Number(/, (\d+) in all/.exec(counts.at(-1)!)![1]);
      const scraped = metrics.get(`sockwarden_sink_dropped_total{sink="${sink}",reason="overflow"}`)!;
      expect(told, counts.at(-1)).toBeGreaterThanOrEqual(scraped);
      expect(counts.at(-1)).toMatch(/\d+ with its queue full \(bound (4|16) MiB\)/);
    }
  });
});
