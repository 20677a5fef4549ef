/**
 * Every namespace in one view: two namespaces made here, each with its own sockets, one process
 * placed in a systemd-style unit cgroup and one in a docker-style container cgroup (on a cgroup2
 * hierarchy this test mounts). `list -a --all-namespaces --json`, run from the test's own
 * namespace, must equal `ss -tuanp` inside each, with the right namespace tags and placement;
 * closing works across namespaces, and the daemon acts on a connection in another namespace.
 *
 * Needs root (network namespaces, setns, cgroup2) and a built dist/sockwarden.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { BackgroundProcess, Netns, requireRoot, run, runOk } from "./helpers/netns.ts";
import { EXECUTABLE, requireExecutable } from "./helpers/sockwarden.ts";
import { ssSnapshot } from "./helpers/ss.ts";
import { keyWithPids, sortedKeys } from "./helpers/compare.ts";

const CLOSE_TARGET = fileURLToPath(new URL("./helpers/close-target.py", import.meta.url));
const SMTP_CLIENTS = fileURLToPath(new URL("./helpers/smtp-clients.py", import.meta.url));
const CONTAINER_ID = "5f1e".padEnd(64, "ab");
const GUARDED_PORT = 40_000 + (process.pid % 20_000);

let a: Netns | undefined;
let b: Netns | undefined;
let targetA: BackgroundProcess;
let clientsB: BackgroundProcess;
let cgroupRoot: string;
let unitName: string;
const made: string[] = [];

async function ask(p: BackgroundProcess, cmd: string): Promise<string> {
  p.child.stdin!.write(`${cmd}\n`);
  return p.nextLine(10_000);
}

function place(pid: number, cgroup: string): void {
  const dir = path.join(cgroupRoot, cgroup);
  fs.mkdirSync(dir, { recursive: true });
  made.push(dir);
  fs.writeFileSync(path.join(dir, "cgroup.procs"), String(pid));
}

beforeAll(async () => {
  requireRoot();
  requireExecutable();
  a = await Netns.create("na");
  b = await Netns.create("nb");
  cgroupRoot = fs.mkdtempSync(path.join(os.tmpdir(), "sw-cgroup-"));
  await runOk(["mount", "-t", "cgroup2", "none", cgroupRoot], { timeoutMs: 5000 });
  targetA = a.spawn(["/usr/bin/python3", CLOSE_TARGET, "8901", "8902", "8903"]);
  expect(await targetA.nextLine(10_000)).toBe("ready");
  // A port nothing else on the machine uses: the daemon below watches every namespace, and must
  // act only on this test's connections.
  clientsB = b.spawn(["/usr/bin/python3", SMTP_CLIENTS, String(GUARDED_PORT)]);
  expect(await clientsB.nextLine(10_000)).toBe("ready");
  unitName = `sw-e2e-${process.pid}.service`;
  place(targetA.pid, `system.slice/${unitName}`);
  place(clientsB.pid, `docker/${CONTAINER_ID}`);
});

afterAll(async () => {
  await targetA?.stop();
  await clientsB?.stop();
  await a?.dispose();
  await b?.dispose();
  if (cgroupRoot) {
    for (const dir of made.reverse()) {
      try {
        fs.rmdirSync(dir);
        const parent = path.dirname(dir);
        if (parent !== cgroupRoot) fs.rmdirSync(parent);
      } catch {
        // A process still in it; the mount goes away below all the same.
      }
    }
    await run(["umount", "-l", cgroupRoot], { timeoutMs: 5000 });
    fs.rmSync(cgroupRoot, { recursive: true, force: true });
  }
});

interface Listed {
  protocol: "tcp" | "udp";
  family: 4 | 6;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  state: string | null;
  pids: number[];
  process: { pid: number; unit: string | null; container: { runtime: string; id: string | null } | null } | null;
  namespace: { inode: number; name: string | null; container: { runtime: string; id: string | null } | null } | null;
}

async function listAll(): Promise<Listed[]> {
  const r = await run([EXECUTABLE, "list", "-a", "--all-namespaces", "--json", "-q"], { timeoutMs: 30_000 });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

describe("--all-namespaces", () => {
  it("lists each namespace's sockets exactly as ss does inside it, tagged with the namespace and placement", async () => {
    // ss inside each namespace, then sockwarden from outside; retried if ss itself moved.
    let ok = false;
    for (let attempt = 0; attempt < 3 && !ok; attempt++) {
      const ssA = await ssSnapshot(a!);
      const ssB = await ssSnapshot(b!);
      const listed = await listAll();
      const inA = listed.filter((e) => e.namespace?.name === a!.name);
      const inB = listed.filter((e) => e.namespace?.name === b!.name);
      const again = [await ssSnapshot(a!), await ssSnapshot(b!)];
      if (sortedKeys(again[0]!, keyWithPids).join() !== sortedKeys(ssA, keyWithPids).join()) continue;
      if (sortedKeys(again[1]!, keyWithPids).join() !== sortedKeys(ssB, keyWithPids).join()) continue;
      expect(sortedKeys(inA, keyWithPids)).toEqual(sortedKeys(ssA, keyWithPids));
      expect(sortedKeys(inB, keyWithPids)).toEqual(sortedKeys(ssB, keyWithPids));
      expect(inA.length).toBeGreaterThan(5);
      ok = true;
      // One inode per namespace, and not the test's own.
      expect(new Set(inA.map((e) => e.namespace!.inode)).size).toBe(1);
      expect(inA[0]!.namespace!.inode).not.toBe(inB[0]!.namespace!.inode);
      // Placement from the cgroups made above.
      const ownedA = inA.filter((e) => e.process);
      expect(ownedA.length).toBeGreaterThan(0);
      for (const e of ownedA) expect(e.process!.unit).toBe(unitName);
      const ownedB = inB.filter((e) => e.process?.pid === clientsB.pid);
      expect(ownedB.length).toBeGreaterThan(0);
      for (const e of ownedB) expect(e.process!.container).toEqual({ runtime: "docker", id: CONTAINER_ID, pod: null });
      expect(inB[0]!.namespace!.container).toEqual({ runtime: "docker", id: CONTAINER_ID, pod: null });
      expect(inA[0]!.namespace!.container).toBeNull();
    }
    expect(ok, "the namespaces' sockets held still long enough to compare").toBe(true);
  });

  it("closes a connection in another namespace", async () => {
    const ports = JSON.parse(await ask(targetA, "ports"));
    const client = ports["v4-a-client"];
    const r = await run([EXECUTABLE, "close", "--all-namespaces", `${client.local[0]}:${client.local[1]}`, `${client.remote[0]}:${client.remote[1]}`, "--audit-log", path.join(cgroupRoot, "..", `sw-ns-audit-${process.pid}.log`)], { timeoutMs: 15_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(["ECONNABORTED", "ECONNRESET"]).toContain(await ask(targetA, "read v4-a-server"));
    expect(await ask(targetA, "send v4-b-client")).toBe("sent");
    expect(await ask(targetA, "read v4-b-server")).toBe("data");
    fs.rmSync(path.join(cgroupRoot, "..", `sw-ns-audit-${process.pid}.log`), { force: true });
  });

  it("the daemon with smtp-guard acts on a connection made inside another namespace", async () => {
    const audit = path.join(os.tmpdir(), `sw-ns-daemon-${process.pid}.log`);
    const config = path.join(os.tmpdir(), `sw-ns-daemon-${process.pid}.toml`);
    fs.writeFileSync(config, `[rules]\nsources = ["smtp-guard"]\n[rules.options.smtp-guard]\nport = ${GUARDED_PORT}\n`);
    const daemon = new BackgroundProcess([EXECUTABLE, "run", "--all-namespaces", "--config", config, "--interval", "0.3", "--audit-log", audit]);
    try {
      const pause = () => new Promise((r) => setTimeout(r, 50));
      const end = performance.now() + 30_000;
      while (!/running /.test(daemon.stderr) && performance.now() < end && !daemon.hasExited) await pause();
      expect(daemon.stderr).toMatch(/running smtp-guard/);
      await ask(clientsB, "connect curl");
      let state = "alive";
      const until = performance.now() + 15_000;
      while (state === "alive" && performance.now() < until) {
        state = JSON.parse(await ask(clientsB, "status")).curl;
        await pause();
      }
      expect(state, daemon.stderr).toMatch(/^broken/);
      // The audit record is written just after the close the client saw.
      const auditBy = performance.now() + 10_000;
      const readAudit = () => (fs.existsSync(audit) ? fs.readFileSync(audit, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)) : []);
      while (readAudit().length === 0 && performance.now() < auditBy) await pause();
      await new Promise((r) => setTimeout(r, 500));
      const lines = readAudit();
      expect(lines, daemon.stderr).toHaveLength(1);
      expect(lines[0]).toMatchObject({ action: "close", outcome: "closed", requestedBy: "smtp-guard", endpoint: { remotePort: GUARDED_PORT, namespace: { name: b!.name } } });
    } finally {
      await daemon.stop();
      fs.rmSync(audit, { force: true });
      fs.rmSync(config, { force: true });
    }
  });
});
