/**
 * Processes exiting in the middle of a /proc scan (and sockets their owners close meanwhile). First in a directory shaped like /proc where
 * processes disappear while the scan is at them (after the listing, between the fd listing and
 * the links, between stat and the other files); then on the real /proc while a helper forks
 * short-lived processes that hold sockets, scanning and reading owners over and over. Nothing may
 * throw, and owners that lived through the scan are found.
 */
import { afterAll, describe, expect, test } from "vitest";
import { spawn } from "node:child_process";
import { EventEmitter } from "node:events";
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

/**
 * Resolves when `ready()` holds, checked now and on each "change" of `changes`; rejects after
 * `ms` (a bound against a hang, not a pace) with `what` and `detail()`.
 */
function until(changes: EventEmitter, ready: () => boolean, ms: number, what: string, detail: () => string = () => ""): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (!ready()) return;
      done();
      resolve();
    };
    const timer = setTimeout(() => {
      done();
      const more = detail();
      reject(new Error(`${what}: not within ${ms} ms${more ? ` (${more})` : ""}`));
    }, ms);
    const done = () => {
      clearTimeout(timer);
      changes.off("change", check);
    };
    changes.on("change", check);
    check();
  });
}

describe("real processes churning while /proc is read", () => {
  test("scans, owner lookups and whole snapshots go on without a throw", async () => {
    // Forks a process every few ms; each opens a socket pair and a listener and exits at once.
    // It goes on until killed (at most 120 s), telling how many it forked every 10.
    const helper = spawn("/usr/bin/python3", ["-c", `
import os, socket, signal, sys, time
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
keep = socket.socket(); keep.bind(("127.0.0.1", 0)); keep.listen(1)
print("ready", flush=True)
end = time.time() + 120
n = 0
while time.time() < end:
    pid = os.fork()
    if pid == 0:
        a, b = socket.socketpair()
        l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(1)
        time.sleep((n % 7) / 1000)
        os._exit(0)
    n += 1
    if n % 10 == 0:
        print("forked", n, flush=True)
    time.sleep(0.002)
`], { stdio: ["ignore", "pipe", "pipe"] });
    const changes = new EventEmitter();
    let ready = false;
    let forks = 0;
    let partial = "";
    let err = "";
    helper.stdout.on("data", (d) => {
      const lines = (partial + d).split("\n");
      partial = lines.pop()!;
      for (const line of lines) {
        if (line === "ready") ready = true;
        const m = /^forked (\d+)$/.exec(line);
        if (m) forks = Number(m[1]);
      }
      changes.emit("change");
    });
    helper.stderr.on("data", (d) => (err += d));
    let exitedWith: string | null = null;
    const exited = new Promise((r) =>
      helper.on("close", (code, signal) => {
        r((exitedWith = `code ${code}, signal ${signal}`));
        changes.emit("change");
      }),
    );
    const forked = () => forks;
    const engine = new LinuxEngine();
    const reader = new ProcessReader({ users: new UserTable(), clockTicks: 100 });
    // Enough rounds that many processes come and go during them; the time bound only catches a hang.
    const wantScans = 100;
    const wantSnapshots = wantScans / 5;
    const wantForks = 200;
    // On a machine busy with other work a hundred scans of the whole host took over 60 s.
    const boundMs = 100_000;
    let scans = 0;
    let snapshots = 0;
    let owned = 0;
    let forkedAtStart = 0;
    try {
      await until(changes, () => ready || exitedWith !== null, 20_000, "the forking helper did not start", () => `stderr ${JSON.stringify(err)}`);
      if (!ready) throw new Error(`the forking helper exited before it was ready (${exitedWith}): stderr ${JSON.stringify(err)}`);
      forkedAtStart = forked();
      const started = performance.now();
      while (scans < wantScans || snapshots < wantSnapshots || forked() - forkedAtStart < wantForks) {
        if (performance.now() - started > boundMs) {
          throw new Error(`only ${scans} scans, ${snapshots} snapshots and ${forked() - forkedAtStart} forks in ${boundMs} ms (want ${wantScans}, ${wantSnapshots}, ${wantForks}); helper stderr ${JSON.stringify(err)}`);
        }
        if (exitedWith !== null) throw new Error(`the forking helper stopped after ${scans} scans (${exitedWith}): stderr ${JSON.stringify(err)}`);
        const owners = scanSocketOwners("/proc", undefined, libcFdLinks());
        for (const pid of new Set(owners.owner.values())) reader.read(pid);
        reader.revalidate();
        scans++;
        if (scans % 5 === 0) {
          const snap = engine.snapshot({ protocols: new Set(["tcp", "udp"]), families: new Set([4, 6]), withProcesses: true });
          owned += snap.endpoints.filter((e) => e.process).length;
          snapshots++;
        }
        // Lets the helper's output in, so its count of forks moves.
        await new Promise((r) => setImmediate(r));
      }
      expect(exitedWith, "the helper was still forking when the scans ended").toBeNull();
    } finally {
      engine.close();
      helper.kill("SIGKILL");
      await exited;
    }
    // The helper's own listener, at least, was found with its owner in every snapshot.
    expect(owned, `endpoints with an owner over ${snapshots} snapshots`).toBeGreaterThanOrEqual(snapshots);
  }, 120_000);
});

describe("a socket its owner closes between the listing and the close", () => {
  test("is left to its owner (gone), while one still held is closed", async () => {
    const server = net.createServer();
    const accepted: net.Socket[] = [];
    /** What each accepted socket saw, by its peer's port. */
    const seen = new Map<number, string[]>();
    const events = new EventEmitter();
    server.on("connection", (c) => {
      accepted.push(c);
      const log: string[] = [];
      seen.set(c.remotePort!, log);
      const note = (what: string) => {
        log.push(what);
        events.emit("change");
      };
      c.on("end", () => note("end"));
      c.on("error", (e) => note((e as NodeJS.ErrnoException).code ?? "error"));
      c.on("close", () => note("close"));
      events.emit("change");
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
    // Their ports, taken now: a destroyed socket no longer tells its own.
    const ports = new Map([closedByOwner, held].map((c) => [c, c.localPort!]));
    const peerOf = (c: net.Socket) => seen.get(ports.get(c)!) ?? [];
    const wait = (ready: () => boolean, what: string) =>
      until(events, ready, 10_000, what, () => `peer of the owner-closed socket saw ${JSON.stringify(peerOf(closedByOwner))}, of the held one ${JSON.stringify(peerOf(held))}`);
    await wait(() => seen.has(ports.get(closedByOwner)!) && seen.has(ports.get(held)!), "the server did not accept both connections");
    const engine = new LinuxEngine();
    try {
      const snap = engine.snapshot({ protocols: new Set(["tcp"]), families: new Set([4]), withProcesses: true });
      const listed = (c: net.Socket) => snap.endpoints.find((e) => e.localPort === ports.get(c) && e.remotePort === port)!;
      const a = listed(closedByOwner);
      const b = listed(held);
      expect(a.inode).not.toBe(0);
      expect(a.process?.pid).toBe(process.pid);
      // The owner closes it: the kernel keeps the socket (FIN_WAIT) without an owner. Its FIN
      // reaching the peer shows the descriptor is gone.
      closedByOwner.destroy();
      await wait(() => peerOf(closedByOwner).some((e) => e === "end" || e === "close"), "the owner's close never reached its peer");
      expect(engine.destroy(a), "the socket its owner closed is left to the kernel").toEqual({ outcome: "gone" });
      expect(engine.destroy(b), "the socket still held is closed").toEqual({ outcome: "closed" });
      await wait(() => peerOf(held).includes("close"), "the peer of the socket closed by the engine never saw it close");
      // The peer of the one left alone saw its owner's orderly close, not a reset.
      expect(peerOf(closedByOwner)[0], "the first thing the peer of the owner-closed socket saw").toBe("end");
      expect(peerOf(closedByOwner).filter((e) => e !== "end" && e !== "close"), "no reset reached the peer of the socket left to its owner").toEqual([]);
    } finally {
      engine.close();
      held.destroy();
      for (const c of accepted) c.destroy();
      server.close();
    }
  });
});
