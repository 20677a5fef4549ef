/**
 * Processes exiting in the middle of a /proc scan (and sockets their owners close meanwhile). First in a directory shaped like /proc where
 * processes disappear while the scan is at them (after the listing, between the fd listing and
 * the links, between stat and the other files); then on the real /proc while a helper forks
 * short-lived processes that hold sockets, scanning and reading owners over and over. Nothing may
 * throw, and owners that lived through the scan are found.
 */
import { afterAll, describe, expect, test } from "vitest";
import { spawn } from "node:child_process";
import net from "node:net";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ProcessReader, nodeFdLinks, ownersOf, scanSocketOwners, type FdLinkScanner } from "../../src/engine/linux/process-map.ts";
import { libcFdLinks } from "../../src/engine/linux/fd-links.ts";
import { UserTable } from "../../src/engine/linux/users.ts";
import { LinuxEngine } from "../../src/engine/linux/linux-engine.ts";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "sw-faults-proc-"));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

function makeProc(base: string, pid: number, sockets: number[]) {
  const dir = path.join(base, String(pid));
  fs.mkdirSync(path.join(dir, "fd"), { recursive: true });
  fs.mkdirSync(path.join(dir, "ns"), { recursive: true });
  fs.symlinkSync("net:[4026531840]", path.join(dir, "ns", "net"));
  sockets.forEach((inode, i) => fs.symlinkSync(`socket:[${inode}]`, path.join(dir, "fd", String(3 + i))));
  fs.writeFileSync(path.join(dir, "stat"), `${pid} (p${pid}) S 1 ${pid} ${pid} 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 ${1000 + pid} 0 0\n`);
  fs.writeFileSync(path.join(dir, "comm"), `p${pid}\n`);
  fs.writeFileSync(path.join(dir, "cmdline"), `/bin/p${pid}\0`);
}

function fakeProc(name: string, pids: number): string {
  const base = path.join(root, name);
  fs.mkdirSync(path.join(base, "self", "ns"), { recursive: true });
  fs.symlinkSync("net:[4026531840]", path.join(base, "self", "ns", "net"));
  fs.writeFileSync(path.join(base, "stat"), "btime 1700000000\n");
  for (let pid = 100; pid < 100 + pids; pid++) makeProc(base, pid, [10_000 + pid, 20_000 + pid]);
  return base;
}

describe("processes that exit while the scan is at them", () => {
  for (const [name, inner] of [["node fs", nodeFdLinks], ["readlinkat", libcFdLinks()]] as const) {
    test(`the scan skips them and finds every survivor (${name})`, () => {
      const base = fakeProc(`scan-${name.replace(/\W/g, "")}`, 200);
      const gone = new Set<number>();
      // Before each process is read, the one three places later exits; every fifth exits
      // between the listing of its fds and the reading of its links.
      const scanner: FdLinkScanner = (fdDir, pid, visit) => {
        const later = pid + 3;
        if (pid % 2 === 0 && fs.existsSync(path.join(base, String(later)))) {
          fs.rmSync(path.join(base, String(later)), { recursive: true, force: true });
          gone.add(later);
        }
        if (pid % 5 === 0) {
          return inner(fdDir, pid, (p, inode) => {
            fs.rmSync(path.join(base, String(pid)), { recursive: true, force: true });
            gone.add(pid);
            visit(p, inode);
          });
        }
        return inner(fdDir, pid, visit);
      };
      const owners = scanSocketOwners(base, undefined, scanner);
      expect(owners.unreadable).toEqual([]);
      for (let pid = 100; pid < 300; pid++) {
        if (gone.has(pid)) continue;
        expect(ownersOf(owners, 10_000 + pid)).toEqual([pid]);
        expect(ownersOf(owners, 20_000 + pid)).toEqual([pid]);
      }
      expect(gone.size).toBeGreaterThan(50);
    });
  }

  test("details of a process that exits half way through being read: null or what was read, never a throw", () => {
    const base = fakeProc("details", 3);
    const reader = new ProcessReader({ procRoot: base, users: new UserTable("/nonexistent"), clockTicks: 100 });
    fs.rmSync(path.join(base, "101", "comm"));
    fs.rmSync(path.join(base, "101", "cmdline"));
    expect(reader.read(101)).toMatchObject({ pid: 101, name: "p101", cmdline: null });
    fs.rmSync(path.join(base, "102"), { recursive: true });
    expect(reader.read(102)).toBeNull();
    expect(reader.read(100)).not.toBeNull();
    fs.rmSync(path.join(base, "100"), { recursive: true });
    expect(reader.read(100)).not.toBeNull();
    // Revalidating forgets the one that went.
    reader.revalidate();
    expect(reader.read(100)).toBeNull();
  });
});

describe("real processes churning while /proc is read", () => {
  test("scans, owner lookups and whole snapshots go on without a throw", async () => {
    // Forks a process every few ms; each opens a socket pair and a listener and exits at once.
    const helper = spawn("/usr/bin/python3", ["-c", `
import os, socket, signal, sys, time
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
keep = socket.socket(); keep.bind(("127.0.0.1", 0)); keep.listen(1)
print("ready", flush=True)
end = time.time() + 8
n = 0
while time.time() < end:
    pid = os.fork()
    if pid == 0:
        a, b = socket.socketpair()
        l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(1)
        time.sleep((n % 7) / 1000)
        os._exit(0)
    n += 1
    time.sleep(0.002)
print(n, flush=True)
`], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    helper.stdout.on("data", (d) => (out += d));
    const exited = new Promise((r) => helper.on("close", r));
    for (let i = 0; i < 100 && !out.includes("ready"); i++) await new Promise((r) => setTimeout(r, 50));
    const engine = new LinuxEngine();
    const reader = new ProcessReader({ users: new UserTable(), clockTicks: 100 });
    let scans = 0;
    let snapshots = 0;
    let owned = 0;
    const until = Date.now() + 5000;
    try {
      while (Date.now() < until) {
        const owners = scanSocketOwners("/proc", undefined, libcFdLinks());
        for (const pid of new Set(owners.owner.values())) reader.read(pid);
        reader.revalidate();
        scans++;
        if (scans % 5 === 0) {
          const snap = engine.snapshot({ protocols: new Set(["tcp", "udp"]), families: new Set([4, 6]), withProcesses: true });
          owned += snap.endpoints.filter((e) => e.process).length;
          snapshots++;
        }
        await new Promise((r) => setImmediate(r));
      }
    } finally {
      engine.close();
      helper.kill("SIGKILL");
      await exited;
    }
    expect(scans).toBeGreaterThan(10);
    expect(snapshots).toBeGreaterThan(1);
    // The helper's own listener, at least, was found with its owner in every snapshot.
    expect(owned).toBeGreaterThanOrEqual(snapshots);
  }, 30_000);
});

describe("a socket its owner closes between the listing and the close", () => {
  test("is left to its owner (gone), while one still held is closed", async () => {
    const server = net.createServer();
    const accepted: net.Socket[] = [];
    const ended: string[] = [];
    server.on("connection", (c) => {
      accepted.push(c);
      c.on("end", () => ended.push("end"));
      c.on("error", (e) => ended.push((e as NodeJS.ErrnoException).code ?? "error"));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as net.AddressInfo).port;
    const connect = () =>
      new Promise<net.Socket>((resolve) => {
        const c = net.connect(port, "127.0.0.1", () => resolve(c));
        c.on("error", () => {});
      });
    const closedByOwner = await connect();
    const held = await connect();
    const engine = new LinuxEngine();
    try {
      const snap = engine.snapshot({ protocols: new Set(["tcp"]), families: new Set([4]), withProcesses: true });
      const listed = (c: net.Socket) => snap.endpoints.find((e) => e.localPort === c.localPort && e.remotePort === port)!;
      const a = listed(closedByOwner);
      const b = listed(held);
      expect(a.inode).not.toBe(0);
      expect(a.process?.pid).toBe(process.pid);
      // The owner closes it: the kernel keeps the socket (FIN_WAIT) without an owner.
      closedByOwner.destroy();
      await new Promise((r) => setTimeout(r, 100));
      expect(engine.destroy(a)).toEqual({ outcome: "gone" });
      expect(engine.destroy(b)).toEqual({ outcome: "closed" });
      await new Promise((r) => setTimeout(r, 100));
      // The peer of the one left alone saw its owner's orderly close, not a reset.
      expect(ended[0]).toBe("end");
    } finally {
      engine.close();
      held.destroy();
      for (const c of accepted) c.destroy();
      server.close();
    }
  });
});
