// Facts about the host recorded with every benchmark report.
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { firstLine, run } from "./proc.ts";

export async function hostInfo(): Promise<Record<string, string | number | null>> {
  const version = async (cmd: string[], pick: (out: string) => string | undefined): Promise<string | null> => {
    const r = await run(cmd, 5_000);
    return pick(r.stdout + "\n" + r.stderr) ?? null;
  };
  let cpu: string | null = null;
  try {
    const info = await Bun.file("/proc/cpuinfo").text();
    cpu = /^model name\s*:\s*(.+)$/m.exec(info)?.[1]?.trim() ?? null;
  } catch {
    // not fatal
  }
  return {
    kernel: os.release(),
    cpu,
    cpus: os.cpus().length,
    memTotalMiB: Math.round(os.totalmem() / 1024 / 1024),
    loadavg: os.loadavg().map((x) => x.toFixed(2)).join(" "),
    bun: Bun.version,
    ss: await version(["ss", "-V"], (o) => /iproute2[-\w.]*/.exec(o)?.[0]),
    netstat: await version(["netstat", "--version"], (o) => /net-tools [\d.]+/.exec(o)?.[0]),
    lsof: await version(["lsof", "-v"], (o) => {
      const v = /revision:\s*([\d.]+)/.exec(o)?.[1];
      return v ? `lsof ${v}` : undefined;
    }),
  };
}

/** Open files on the whole host (/proc/sys/fs/file-nr). */
export async function hostOpenFiles(): Promise<number | null> {
  try {
    const n = Number((await Bun.file("/proc/sys/fs/file-nr").text()).trim().split(/\s+/)[0]);
    return Number.isFinite(n) ? n : null;
  } catch {
    return null;
  }
}

/** Local date and time for result file names: 2026-11-21-231001. */
export function stamp(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/**
 * Writes a suite's report as <suite>-<stamp>.md and .json into outDir and says where; false (with
 * the reason logged) when it cannot.
 */
export function saveReport(outDir: string, suite: string, started: Date, markdown: string, report: unknown, log: (msg: string) => void): boolean {
  try {
    mkdirSync(outDir, { recursive: true });
    const base = path.join(outDir, `${suite}-${stamp(started)}`);
    writeFileSync(`${base}.md`, markdown);
    writeFileSync(`${base}.json`, JSON.stringify(report, null, 2) + "\n");
    process.stdout.write(`\nSaved ${base}.md and ${base}.json\n`);
    return true;
  } catch (e) {
    log(`could not save results: ${firstLine(e instanceof Error ? e.message : String(e))}`);
    return false;
  }
}
