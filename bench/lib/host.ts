// Facts about the host recorded with every benchmark report.
import os from "node:os";
import { statSync } from "node:fs";
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

/** Which build was measured: its --version and when the file was written. */
export async function executableInfo(exe: string): Promise<Record<string, string | null>> {
  const r = await run([exe, "--version"], 10_000);
  let built: string | null = null;
  try {
    built = statSync(exe).mtime.toISOString();
  } catch {
    // reported as unknown
  }
  return { sockwarden: r.ok ? firstLine(r.stdout) || null : null, sockwardenBuilt: built };
}
