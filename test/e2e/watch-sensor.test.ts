/**
 * `watch --sensor ebpf` against the real kernel, in a network namespace made here: a process
 * named `beacon` makes 20 connections of about 5 ms each, all between two refreshes. Plain
 * polling (`--sensor poll`, no `-a`) reports none of them as beacon's: it knows them only from
 * their ends (the kernel's destroy notices, told as short-lived connections in state CLOSE, shown
 * as connections) and the TIME_WAIT a normal close leaves, neither with beacon as its process;
 * with the sensor every one is reported
 * once, with beacon's name and the real addresses and ports. A user without CAP_BPF, CAP_PERFMON
 * or CAP_SYS_ADMIN gets one note saying why, and the listing by polling as before.
 *
 * The order of things is shown by sentinel connections (a held connection's opened event means
 * the watcher runs; one opened after the burst means a refresh came after it), never by timing.
 *
 * Needs root (network namespaces, the sensor's capabilities, setpriv) and a built dist/sockwarden.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BackgroundProcess, Netns, describeRun, requireRoot } from "./helpers/netns.ts";
import { EXECUTABLE, requireExecutable } from "./helpers/sockwarden.ts";
import { CONNECTIONS as BEACON, LISTENER as SERVER, localPorts, type ClientRun } from "../support/traffic/scripts.ts";

const PYTHON = "/usr/bin/python3";
const HOST = "127.0.0.1";
const SERVER_PORT = 7700;
const SENTINEL_PORT = 7701;
const CONNECTIONS = 20;

/**
 * TCP: listens on its port, connects to itself. UDP: a socket connected to the port (seen by
 * snapshots only, never by the sensor). Prints the client's port, holds until stdin closes.
 */
const SENTINEL_PY = `
import socket, sys
if sys.argv[2] == "udp":
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.connect(("${HOST}", int(sys.argv[1])))
    print(u.getsockname()[1], flush=True)
    sys.stdin.read()
    sys.exit(0)
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("${HOST}", int(sys.argv[1])))
srv.listen(8)
c = socket.create_connection(("${HOST}", int(sys.argv[1])))
a, _ = srv.accept()
print(c.getsockname()[1], flush=True)
sys.stdin.read()
`;

interface WatchEvent {
  type: string;
  protocol: string;
  state: string | null;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  process: { pid: number; name: string } | null;
  shortLived?: boolean;
}

let ns: Netns | undefined;
let nextClientPort = 22_000;
let server: BackgroundProcess | undefined;

beforeAll(async () => {
  requireRoot("The eBPF sensor's watch test");
  requireExecutable();
  ns = await Netns.create("sens");
  server = ns.spawn([PYTHON, ...SERVER, "sw-listener", HOST, String(SERVER_PORT)]);
  expect(await server.nextLine(15_000)).toMatch(/^ready \d+$/);
});

afterAll(async () => {
  await ns?.dispose();
});

/** Reads events until `until` holds; throws with what it has when time runs out first. */
async function collect(watcher: BackgroundProcess, into: WatchEvent[], until: (events: WatchEvent[]) => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!until(into)) {
    let line: string;
    try {
      line = await watcher.nextLine(Math.max(1, deadline - performance.now()));
    } catch (err) {
      throw new Error(`${(err as Error).message}\nevents so far: ${into.map((e) => `${e.type} ${e.localPort}>${e.remotePort} ${e.state} ${e.process?.name}`).join("; ")}\nstderr: ${watcher.stderr}`);
    }
    into.push(JSON.parse(line) as WatchEvent);
  }
}

/** A held connection from a sentinel process; resolves with its client port once it is open. */
async function sentinel(port: number, protocol: "tcp" | "udp" = "tcp"): Promise<{ process: BackgroundProcess; clientPort: number }> {
  const p = ns!.spawn([PYTHON, "-c", SENTINEL_PY, String(port), protocol]);
  return { process: p, clientPort: Number(await p.nextLine(10_000)) };
}

const seen = (port: number, protocol = "tcp") => (events: WatchEvent[]) =>
  events.some((e) => e.type === "opened" && e.protocol === protocol && e.localPort === port);

/** Runs a watcher through a beacon burst; returns its events and the burst's client ports. */
async function watchBurst(sensor: "ebpf" | "poll", sentinelBase: number): Promise<{ events: WatchEvent[]; ports: number[]; pid: number; stderr: string }> {
  // --initial: the sentinel is reported whether the first look saw it or a change after it.
  const watcher = ns!.spawn([EXECUTABLE, "watch", "--ndjson", "--initial", "-t", "-u", "--sensor", sensor, "--interval", "1", "--duration", "120"]);
  const events: WatchEvent[] = [];
  const held: BackgroundProcess[] = [];
  try {
    // The sensor starts before the first look: once anything is reported, it runs.
    const first = await sentinel(sentinelBase);
    held.push(first.process);
    await collect(watcher, events, seen(first.clientPort));
    // Bound client ports, each once (below the ephemeral range): an ephemeral port may be given
    // out again after a reset, and two connections would share a four-tuple.
    const firstPort = nextClientPort;
    nextClientPort += CONNECTIONS;
    const burst = await ns!.exec([PYTHON, ...BEACON, "beacon", HOST, String(SERVER_PORT), String(CONNECTIONS), HOST, String(firstPort), "alternate", "5"], { timeoutMs: 20_000 });
    expect(burst.code, describeRun(burst)).toBe(0);
    const client = JSON.parse(burst.stdout) as ClientRun;
    const [pid, ports] = [client.pid, localPorts(client)];
    expect(new Set(ports).size).toBe(CONNECTIONS);
    // Two refreshes after the burst (a connected UDP socket is seen by a snapshot only): whatever
    // polling can say about the burst has been said, and a snapshot that would report a
    // connection the sensor already reported has come.
    for (const base of [sentinelBase + 1, sentinelBase + 2]) {
      const s = await sentinel(base, "udp");
      held.push(s.process);
      await collect(watcher, events, seen(s.clientPort, "udp"));
    }
    expect(await watcher.terminate(), watcher.stderr).toBe(true);
    for (const line of watcher.remainingLines()) events.push(JSON.parse(line) as WatchEvent);
    return { events, ports, pid, stderr: watcher.stderr };
  } finally {
    await watcher.stop();
    for (const p of held) await p.stop();
  }
}

describe("watch --sensor", { timeout: 120_000 }, () => {
  it("polling alone reports none of beacon's 5 ms connections as beacon's", async () => {
    const { events, ports } = await watchBurst("poll", SENTINEL_PORT);
    const burst = new Set(ports);
    expect(events.some((e) => e.protocol === "udp")).toBe(true);
    // Their ends (short-lived, in CLOSE) and the TIME_WAIT left by a normal close show, none as beacon's.
    const about = events.filter((e) => burst.has(e.localPort) || (e.localPort === SERVER_PORT && burst.has(e.remotePort)));
    expect(about.filter((e) => e.process?.name === "beacon" || !(e.state === "TIME_WAIT" || (e.state === "CLOSE" && e.shortLived)))).toEqual([]);
    // Plain watch shows connections known only from their ends, with their real addresses: the
    // server's end of each reset (a client's own reset notice has lost its peer's port).
    const ends = about.filter((e) => e.state === "CLOSE" && e.shortLived && e.localPort === SERVER_PORT && burst.has(e.remotePort));
    expect(ends.length, about.map((e) => `${e.type} ${e.localPort}>${e.remotePort} ${e.state}${e.shortLived ? " short" : ""}`).join("; ")).toBeGreaterThan(0);
  });

  it("with the eBPF sensor reports each of them once, with beacon's name and its addresses and ports", async () => {
    const { events, ports, pid, stderr } = await watchBurst("ebpf", SENTINEL_PORT + 10);
    expect(stderr).not.toMatch(/sensor unavailable/);
    const burst = new Set(ports);
    for (const port of ports) {
      const mine = events.filter((e) => e.localPort === port && e.remotePort === SERVER_PORT);
      const opened = mine.filter((e) => e.type === "opened");
      const closed = mine.filter((e) => e.type === "closed");
      expect(opened, `connection from port ${port}: ${JSON.stringify(mine)}`).toHaveLength(1);
      expect(closed, `connection from port ${port}`).toHaveLength(1);
      for (const e of mine) {
        expect(e.localAddress).toBe(HOST);
        expect(e.remoteAddress).toBe(HOST);
        expect(e.process?.name).toBe("beacon");
        expect(e.process?.pid).toBe(pid);
      }
    }
    // The accepted side: the listener started before the watcher, so its process comes from the listing.
    const accepted = events.filter((e) => e.localPort === SERVER_PORT && burst.has(e.remotePort));
    expect(accepted.filter((e) => e.type === "opened")).toHaveLength(CONNECTIONS);
    expect(accepted.filter((e) => e.process?.name !== "sw-listener")).toEqual([]);
  });

  it("without the capabilities: auto (the default) says why in one note and lists by polling; ebpf asked for fails", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sockwarden-sensor-"));
    try {
      chmodSync(dir, 0o755);
      const exe = join(dir, "sockwarden");
      copyFileSync(EXECUTABLE, exe);
      chmodSync(exe, 0o755);
      const held = await sentinel(SENTINEL_PORT + 20);
      try {
        const asNobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "env", "-i", "PATH=/usr/bin:/bin"];
        const r = await ns!.exec([...asNobody, exe, "watch", "--initial", "--ndjson", "--duration", "1.5"], { cwd: dir, timeoutMs: 30_000 });
        expect(r.code, describeRun(r)).toBe(0);
        const notes = r.stderr.split("\n").filter((l) => /eBPF sensor/.test(l));
        expect(notes, r.stderr).toHaveLength(1);
        expect(notes[0]).toMatch(/^note: eBPF sensor unavailable: .*CAP_BPF and CAP_PERFMON .*CAP_SYS_ADMIN.*polling/);
        const events = r.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as WatchEvent);
        expect(events.some((e) => e.type === "opened" && e.localPort === held.clientPort && e.remotePort === SENTINEL_PORT + 20)).toBe(true);
        // Asked for by name, the sensor is not replaced by polling: one line, exit 5.
        const explicit = await ns!.exec([...asNobody, exe, "watch", "--sensor", "ebpf", "--ndjson", "--duration", "1.5"], { cwd: dir, timeoutMs: 30_000 });
        expect(explicit.code, describeRun(explicit)).toBe(5);
        expect(explicit.stdout).toBe("");
        expect(explicit.stderr).toMatch(/^sockwarden: eBPF sensor unavailable: .*CAP_BPF and CAP_PERFMON .*; --sensor auto would poll instead\n$/);
      } finally {
        await held.process.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
