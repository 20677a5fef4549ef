/**
 * A kill reaches only the process it was decided about, with real processes: the PID's exact
 * start is compared right before each signal (through a pidfd, and by PID where pidfds are
 * missing), protection is asked about the process that is really there, protected ports and
 * addresses protect the process holding them, and the audit record says what was found and sent.
 *
 * Forcing a real PID reuse needs a PID namespace (test/e2e/kill-guard.test.ts does it); here the
 * process decided about is one that has exited, and the kill is aimed at the PID of another,
 * living one: what a reuse looks like from the killer's side.
 */
import { afterAll, afterEach, describe, expect, test } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawn, type ChildProcess } from "node:child_process";
import { AuditLog } from "../../src/actions/audit-log.ts";
import { endProcess } from "../../src/actions/end-process.ts";
import { openProcess } from "../../src/engine/index.ts";
import { disablePidfdsForTesting } from "../../src/engine/linux/process-signal.ts";
import { readProcessDetails } from "../../src/engine/linux/process-details.ts";
import type { ProcessHandle } from "../../src/engine/types.ts";
import type { ProcessInfo } from "../../src/model/process.ts";
import { Protection } from "../../src/daemon/protection.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sw-kill-guard-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Child {
  process: ChildProcess;
  pid: number;
  /** Sends a line and returns the child's next line: it echoes, or says TERM first if one came. */
  ask(line: string): Promise<string>;
  /** The bound port, for a listener. */
  port: number;
}

const children: ChildProcess[] = [];
afterEach(() => {
  disablePidfdsForTesting(false);
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});

/**
 * A python3 child that says TERM when it gets SIGTERM (and carries on), echoes each stdin line
 * (but becomes `sleep` on "exec"), and with `listen` holds a TCP listener on 127.0.0.1. A signal sent to it before a line is
 * written is handled before that line is read, so "the next line is the echo" means no SIGTERM
 * reached it.
 */
function startChild(listen = false): Promise<Child> {
  const code = [
    "import os, signal, socket, sys",
    "signal.signal(signal.SIGTERM, lambda *a: (sys.stdout.write('TERM\\n'), sys.stdout.flush()))",
    listen ? "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); port = s.getsockname()[1]" : "port = 0",
    "sys.stdout.write(f'ready {port}\\n'); sys.stdout.flush()",
    "for line in sys.stdin:",
    "    if line == 'exec\\n': os.execv('/bin/sleep', ['sleep', '60'])",
    "    sys.stdout.write(line); sys.stdout.flush()",
  ].join("\n");
  const child = spawn("/usr/bin/python3", ["-c", code], { stdio: ["pipe", "pipe", "pipe"] });
  children.push(child);
  const lines: string[] = [];
  const waiters: (() => void)[] = [];
  let partial = "";
  let err = "";
  child.stderr!.on("data", (d) => (err += d));
  child.stdout!.on("data", (d) => {
    const parts = (partial + d).split("\n");
    partial = parts.pop()!;
    lines.push(...parts);
    for (const w of waiters.splice(0)) w();
  });
  child.on("exit", () => {
    for (const w of waiters.splice(0)) w();
  });
  const next = async (): Promise<string> => {
    const deadline = performance.now() + 20_000;
    while (lines.length === 0) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`python3 ended (${child.exitCode ?? child.signalCode}); stderr: ${err}`);
      if (performance.now() > deadline) throw new Error(`python3 said nothing within 20 s; stderr: ${err}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 200);
      });
    }
    return lines.shift()!;
  };
  return next().then((ready) => ({
    process: child,
    pid: child.pid!,
    port: Number(ready.split(" ")[1]),
    ask: (line) => {
      child.stdin!.write(`${line}\n`);
      return next();
    },
  }));
}

/** The process as a listing shows it: what a kill is decided about. */
function listed(pid: number): ProcessInfo {
  const p = readProcessDetails(pid);
  if (!p) throw new Error(`pid ${pid} is not there`);
  return p;
}

/** A process that has come and gone: its listing, with its start, is all that is left. */
async function exitedProcess(): Promise<ProcessInfo> {
  const gone = await startChild();
  const info = listed(gone.pid);
  gone.process.kill("SIGKILL");
  await new Promise((r) => gone.process.once("exit", r));
  return info;
}

const readAudit = (file: string) => fs.readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l));

describe("the PID must still name the process decided about", () => {
  test("a kill aimed at an exited process whose PID now names another is refused, and audited as such", async () => {
    const old = await exitedProcess();
    const other = await startChild();
    const audit = new AuditLog(path.join(dir, "reused.log"));
    const r = await endProcess({ ...old, pid: other.pid }, { requestedBy: "test", reason: "r", audit });
    expect(r).toMatchObject({ ok: false, result: "reused", signals: [], observed: { pid: other.pid, startId: listed(other.pid).startId } });
    expect(r.message).toMatch(new RegExp(`^refused: pid ${other.pid} is now python3 \\(started [^)]+\\), not python3 \\(started ${old.startTime}\\)`));
    expect(await other.ask("ping")).toBe("ping");
    const [record] = readAudit(path.join(dir, "reused.log"));
    expect(record).toMatchObject({
      action: "kill", outcome: "reused", signals: [],
      process: { pid: other.pid, startId: old.startId }, observed: { pid: other.pid, startId: listed(other.pid).startId },
    });
  });

  test("the exact start decides, not the rounded ISO time", async () => {
    const other = await startChild();
    const now = listed(other.pid);
    // One clock tick apart: the same to the second, another process all the same.
    const r = await endProcess({ ...now, startId: String(Number(now.startId) + 1) }, { requestedBy: "test" });
    expect(r.result).toBe("reused");
    expect(await other.ask("ping")).toBe("ping");
  });

  test("without an exact start (a listing that has only the ISO time) that is compared", async () => {
    const old = await exitedProcess();
    const other = await startChild();
    const r = await endProcess({ ...old, pid: other.pid, startId: undefined }, { requestedBy: "test" });
    expect(r.result).toBe("reused");
    const unknown = await endProcess({ ...old, pid: other.pid, startId: null, startTime: null }, { requestedBy: "test" });
    expect(unknown).toMatchObject({ ok: false, result: "failed", signals: [] });
    expect(unknown.message).toMatch(/cannot tell whether pid \d+ is still python3/);
    expect(await other.ask("ping")).toBe("ping");
  });

  test("the same refusal where pidfds are missing (checked by PID right before kill(2))", async () => {
    disablePidfdsForTesting(true);
    const h = openProcess(process.pid) as ProcessHandle;
    expect(h.binding).toBe("pid");
    h.close();
    const old = await exitedProcess();
    const other = await startChild();
    expect((await endProcess({ ...old, pid: other.pid }, { requestedBy: "test" })).result).toBe("reused");
    expect(await other.ask("ping")).toBe("ping");
    // And the process meant is still ended.
    const meant = await startChild();
    const r = await endProcess(listed(meant.pid), { requestedBy: "test", graceMs: 0 });
    expect(r).toMatchObject({ result: "signalled", signals: ["SIGTERM"] });
    expect(await meant.ask("ping")).toBe("TERM");
  });

  test("a pidfd keeps naming the process it was opened on once that has exited", async () => {
    const child = await startChild();
    const h = openProcess(child.pid) as ProcessHandle;
    try {
      expect(h.binding).toBe("pidfd");
      expect(h.inspect()).toMatchObject({ pid: child.pid, startId: listed(child.pid).startId });
      child.process.kill("SIGKILL");
      await new Promise((r) => child.process.once("exit", r));
      // Reaped: whatever takes the PID from now on is not reached through this descriptor.
      expect(h.inspect()).toBeNull();
      expect(h.signal("SIGTERM")).toEqual({ outcome: "gone" });
    } finally {
      h.close();
    }
    expect(openProcess(child.pid)).toEqual({ outcome: "gone" });
  });

  test("a process that has since run another executable is refused", async () => {
    const child = await startChild();
    const chosen = listed(child.pid);
    child.process.stdin!.write("exec\n");
    const deadline = performance.now() + 20_000;
    while (readProcessDetails(child.pid)?.path === chosen.path) {
      if (performance.now() > deadline) throw new Error("the child did not exec sleep within 20 s");
      await new Promise((r) => setTimeout(r, 20));
    }
    const r = await endProcess(chosen, { requestedBy: "test" });
    expect(r).toMatchObject({ ok: false, result: "changed", signals: [], observed: { pid: child.pid, name: "sleep" } });
    expect(r.message).toMatch(new RegExp(`^refused: pid ${child.pid} \\(python3\\) now runs /\\S*sleep, not ${chosen.path}$`));
    expect(child.process.exitCode).toBeNull();
    expect(readProcessDetails(child.pid)?.name).toBe("sleep");
  });

  test("a process that has exited is gone, not an error", async () => {
    const old = await exitedProcess();
    const r = await endProcess(old, { requestedBy: "test" });
    expect(r).toMatchObject({ ok: true, result: "gone", signals: [] });
  });
});

describe("protection is asked about the process that is there when the signal goes out", () => {
  test("the guard sees the process found at signalling, and its refusal stops the kill", async () => {
    const child = await startChild();
    const seen: ProcessInfo[] = [];
    const audit = new AuditLog(path.join(dir, "guard.log"));
    const r = await endProcess(listed(child.pid), {
      requestedBy: "test", audit,
      guard: (now) => (seen.push(now), now.name === "python3" ? "process python3 is protected" : null),
    });
    expect(seen.map((p) => p.pid)).toEqual([child.pid]);
    expect(r).toMatchObject({ ok: false, result: "protected", signals: [] });
    expect(r.message).toBe(`refused: python3 (pid ${child.pid}) is protected: process python3 is protected`);
    expect(await child.ask("ping")).toBe("ping");
    expect(readAudit(path.join(dir, "guard.log"))[0]).toMatchObject({ outcome: "protected", observed: { pid: child.pid, name: "python3" }, signals: [] });
  });

  test("before the SIGKILL every check runs again", async () => {
    const child = await startChild();
    let asked = 0;
    const r = await endProcess(listed(child.pid), {
      requestedBy: "test", graceMs: 200,
      guard: () => (++asked === 1 ? null : "it became protected"),
    });
    expect(asked).toBe(2);
    expect(r).toMatchObject({ ok: false, result: "protected", signals: ["SIGTERM"] });
    expect(r.message).toMatch(/^refused SIGKILL: python3 \(pid \d+\) is protected now: it became protected; SIGTERM was sent$/);
    // It got the SIGTERM (and said so), and no SIGKILL: it still answers.
    expect(await child.ask("ping")).toBe("TERM");
    expect(await child.ask("ping")).toBe("ping");
  });

  test("a process holding a socket on a protected port or address is not ended; the socket is named", async () => {
    const holder = await startChild(true);
    for (const [config, why] of [
      [{ ports: [holder.port], addresses: [] }, `port ${holder.port} is protected`],
      [{ ports: [], addresses: ["127.0.0.0/8"] }, "address 127.0.0.0/8 is protected"],
    ] as const) {
      const protection = new Protection({ ...config, addresses: [...config.addresses], ports: [...config.ports], processes: [], paths: [] });
      const r = await endProcess(listed(holder.pid), { requestedBy: "test", guard: (now, h) => protection.killRefusal(now, h.sockets() ?? []) });
      expect(r).toMatchObject({ result: "protected", signals: [] });
      expect(r.message).toBe(`refused: python3 (pid ${holder.pid}) is protected: it holds tcp 127.0.0.1:${holder.port} and ${why}`);
    }
    expect(await holder.ask("ping")).toBe("ping");
    // The sockets are read afresh, from the process itself.
    const h = openProcess(holder.pid) as ProcessHandle;
    expect(h.sockets()).toEqual([{ protocol: "tcp", family: 4, localAddress: "127.0.0.1", localPort: holder.port, remoteAddress: "0.0.0.0", remotePort: 0 }]);
    h.close();
    // An unprotected port does not stop it.
    const open = new Protection({ ports: [1], addresses: ["10.0.0.0/8"], processes: [], paths: [] });
    const r = await endProcess(listed(holder.pid), { requestedBy: "test", graceMs: 0, guard: (now, h2) => open.killRefusal(now, h2.sockets() ?? []) });
    expect(r.result).toBe("signalled");
    expect(await holder.ask("ping")).toBe("TERM");
  });
});
