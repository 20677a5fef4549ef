import { afterAll, afterEach, describe, expect, test } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawn, type ChildProcess } from "node:child_process";
import { AuditLog } from "../../src/actions/audit-log.ts";
import { endProcess } from "../../src/actions/end-process.ts";
import { readProcessDetails } from "../../src/engine/linux/process-details.ts";
import { closeEndpoint } from "../../src/actions/close-endpoint.ts";
import { parseEndpointArgument, sameAddress } from "../../src/cli/endpoint-argument.ts";
import { hasCapability, parseCapEff } from "../../src/engine/linux/capabilities.ts";
import type { SocketEngine } from "../../src/engine/types.ts";
import { UsageError } from "../../src/errors.ts";
import { endpoint, namedProcess } from "../support/endpoints.ts";
import { track, waitWithoutTimers, withTestClock } from "./helpers/test-clock.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sw-actions-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const ep = endpoint({
  localPort: 5000, remoteAddress: "10.0.0.1", remotePort: 25, inode: 7, bytesSent: 1, bytesReceived: 2, packetsSent: 3, packetsReceived: 4,
  cookie: "9", process: namedProcess(4242, "curl", { cmdline: "curl x" }), pids: [4242],
});

describe("audit log", () => {
  test("one JSON line per action, appended", () => {
    const file = path.join(dir, "sub", "audit.log");
    const log = new AuditLog(file);
    log.append({ action: "close", endpoint: ep, reason: "r1", requestedBy: "cli", outcome: "closed", message: "m1" });
    log.append({ action: "kill", process: ep.process, reason: "r2", requestedBy: "smtp-guard", outcome: "terminated", message: "m2" });
    const lines = fs.readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ action: "close", reason: "r1", requestedBy: "cli", outcome: "closed", endpoint: { remotePort: 25 }, process: { name: "curl" } });
    expect(lines[1]).toMatchObject({ action: "kill", endpoint: null, requestedBy: "smtp-guard", process: { pid: 4242 } });
    expect(Date.parse(lines[0].time)).not.toBeNaN();
  });

  test("a record that cannot be written goes to the fallback with the reason", () => {
    const seen: string[] = [];
    const blocker = path.join(dir, "not-a-dir");
    fs.writeFileSync(blocker, "");
    const log = new AuditLog(path.join(blocker, "audit.log"), (line) => seen.push(line));
    log.append({ action: "close", endpoint: ep, reason: "", requestedBy: "cli", outcome: "closed", message: "m" });
    expect(log.failures).toBe(1);
    expect(seen[0]).toMatch(/cannot write the audit log .*\((ENOTDIR|EEXIST)\).*"action":"close"/);
  });
});

describe("closeEndpoint", () => {
  const engine = (result: ReturnType<NonNullable<SocketEngine["destroy"]>> | Error): SocketEngine => ({
    name: "t",
    snapshot: () => ({ endpoints: [], takenAt: 0, source: "t", notes: [], unreadableProcesses: 0 }),
    destroy: () => {
      if (result instanceof Error) throw result;
      return result;
    },
    close() {},
  });
  test("outcomes, each audited", () => {
    const file = path.join(dir, "close.log");
    const audit = new AuditLog(file);
    expect(closeEndpoint(engine({ outcome: "closed" }), ep, { requestedBy: "cli", audit })).toMatchObject({ ok: true, result: "closed" });
    expect(closeEndpoint(engine({ outcome: "gone" }), ep, { requestedBy: "cli", audit }).message).toMatch(/already gone/);
    expect(closeEndpoint(engine({ outcome: "failed", errno: 1, reason: "needs CAP_NET_ADMIN" }), ep, { requestedBy: "cli", audit })).toMatchObject({ ok: false, result: "failed" });
    expect(closeEndpoint(engine(new Error("boom")), ep, { requestedBy: "cli", audit }).message).toMatch(/boom/);
    const noDestroy: SocketEngine = { name: "plain", snapshot: engine({ outcome: "closed" }).snapshot, close() {} };
    expect(closeEndpoint(noDestroy, ep, { requestedBy: "cli", audit }).result).toBe("unsupported");
    const outcomes = fs.readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l).outcome);
    expect(outcomes).toEqual(["closed", "gone", "failed", "failed", "unsupported"]);
  });
});

describe("endProcess", () => {
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  });
  /**
   * Starts `python3 -c setup` followed by a sleep, and resolves once the child says it has run
   * `setup` (its signal handlers are in place): acting on it any earlier races its start.
   */
  const start = (setup: string): Promise<ChildProcess> => {
    const child = spawn("/usr/bin/python3", ["-c", `${setup}\nimport sys, time\nsys.stdout.write("ready\\n"); sys.stdout.flush()\ntime.sleep(30)`], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(child);
    return new Promise((resolve, reject) => {
      let out = "";
      let err = "";
      const timer = setTimeout(() => reject(new Error(`python3 did not say ready within 20 s; stderr: ${err}`)), 20_000);
      child.stderr!.on("data", (d) => (err += d));
      child.stdout!.on("data", (d) => {
        out += d;
        if (out.includes("ready\n")) {
          clearTimeout(timer);
          resolve(child);
        }
      });
      child.on("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`python3 ended (${code ?? signal}) before it was ready; stderr: ${err}`));
      });
    });
  };

  /** The process as a listing shows it, start included: what a kill is decided about. */
  const listed = (pid: number) => readProcessDetails(pid)!;

  test("SIGTERM ends a well-behaved process", async () => {
    const child = await start("pass");
    const r = await endProcess(listed(child.pid!), { requestedBy: "test", graceMs: 2000 });
    expect(r).toMatchObject({ ok: true, result: "terminated", signals: ["SIGTERM"], observed: { pid: child.pid } });
  });

  test("a process that ignores SIGTERM is killed after the grace period", async () => {
    const child = await start("import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN)");
    const audit = new AuditLog(path.join(dir, "kill.log"));
    // It is given its grace period before the SIGKILL, and no more.
    const ending = await withTestClock(
      async (advance) => {
        const e = track(endProcess(listed(child.pid!), { requestedBy: "test", graceMs: 400, audit }));
        await advance(350);
        expect(e.settled, "ended before its grace period was over").toBe(false);
        expect(child.signalCode, "killed before its grace period was over").toBeNull();
        await advance(50);
        return e;
      },
      { performance: true },
    );
    await waitWithoutTimers("endProcess to return once the grace period was over", () => ending.settled);
    expect(await ending.promise).toMatchObject({ ok: true, result: "killed" });
    expect(JSON.parse(fs.readFileSync(path.join(dir, "kill.log"), "utf8"))).toMatchObject({ outcome: "killed", signals: ["SIGTERM", "SIGKILL"] });
  });

  test("a PID that names another process is not signalled, nor are init and sockwarden itself", async () => {
    const child = await start("pass");
    const me = listed(child.pid!);
    const r = await endProcess({ ...me, startId: String(Number(me.startId) - 1) }, { requestedBy: "test" });
    expect(r.result).toBe("reused");
    expect(child.exitCode).toBeNull();
    child.kill("SIGKILL");
    expect((await endProcess({ ...me, pid: 1 }, { requestedBy: "t" })).ok).toBe(false);
    expect((await endProcess({ ...me, pid: process.pid }, { requestedBy: "t" })).message).toMatch(/itself/);
  });
});

describe("endpoint arguments", () => {
  test("ADDRESS:PORT with brackets for IPv6", () => {
    expect(parseEndpointArgument("10.0.0.5:43122")).toEqual({ address: "10.0.0.5", port: 43122 });
    expect(parseEndpointArgument("[2001:DB8::1]:443")).toEqual({ address: "2001:db8::1", port: 443 });
    for (const bad of ["10.0.0.5", "2001:db8::1:443", "[::1]", "host:80", "1.2.3.4:99999", ":80"]) {
      expect(() => parseEndpointArgument(bad), bad).toThrow(UsageError);
    }
    expect(sameAddress("::ffff:127.0.0.1", "127.0.0.1")).toBe(true);
    expect(sameAddress("::1", "127.0.0.1")).toBe(false);
  });
});

describe("capabilities", () => {
  test("CapEff bits", () => {
    const status = "Name:\tx\nCapEff:\t0000000000001000\n";
    expect(parseCapEff(status)).toBe(0x1000n);
    expect(hasCapability(12, status)).toBe(true);
    expect(hasCapability(19, status)).toBe(false);
    expect(hasCapability(12, "CapEff:\t0000000000000000\n")).toBe(false);
  });
});
