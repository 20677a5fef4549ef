/**
 * The eBPF sensor against the real kernel: the set-state program passes the verifier, attaches
 * to sock:inet_sock_set_state, and reports every TCP state change of a process named `beacon`
 * making short connections (200 over IPv4 to a wildcard listener, 20 over IPv6 to a listener on
 * its own address, 20 more through per-CPU perf buffers) inside a network namespace made here: each
 * connection's changes from SYN_SENT to CLOSE with its 4-tuple and `beacon`'s pid and comm on
 * every one, the last included, whether it ended by a normal close or a reset; each accepted
 * socket with its listener's process. Also: a refused program comes back with the verifier's log,
 * a process without capabilities is told which it lacks, and stopping closes every descriptor
 * and leaves tracefs mounted or not as it was found.
 *
 * The tracepoint is machine-wide, so records are picked by the test's own addresses (127.83.41.x
 * and fd53:7761::x, unusual on purpose) and port; nothing is timed, only waited for within bounds.
 *
 * Needs root (network namespaces, CAP_BPF/CAP_PERFMON or CAP_SYS_ADMIN) and python3. Does not
 * need the compiled executable.
 */
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import fs from "node:fs";
import { fileURLToPath } from "node:url";
import { Netns, describeRun, requireRoot, run } from "./helpers/netns.ts";
import { SensorUnavailableError, SetStateSensor, loadTracepointProgram, type SetStateSensorOptions } from "../../src/engine/linux/bpf/sensor.ts";
import { Assembler, R0, R1 } from "../../src/engine/linux/bpf/assembler.ts";
import { closeFd, progRecursionMisses } from "../../src/engine/linux/bpf/bpf-syscalls.ts";
import type { SetStateRecord } from "../../src/engine/linux/bpf/set-state-record.ts";
import { parseMountInfo } from "../../src/engine/linux/bpf/tracepoint-format.ts";
import { CONNECTIONS as BEACON, LISTENER as SERVER, localPorts, type ClientRun } from "../support/traffic/scripts.ts";

const PYTHON = "/usr/bin/python3";
const START_SCRIPT = fileURLToPath(new URL("./helpers/bpf-sensor-start.ts", import.meta.url));
const BUN = fileURLToPath(new URL("../../node_modules/.bin/bun", import.meta.url));

const SERVER_V4 = "127.83.41.7";
const CLIENT_V4 = "127.83.41.8";
const SERVER_V6 = "fd53:7761::7";
const CLIENT_V6 = "fd53:7761::8";
// Below the ephemeral range, so no client's local port (here or elsewhere) can be it.
const PORT = 20_000 + (process.pid % 10_000);
const SERVER_NAME = "sw-listener";

let ns: Netns | undefined;

function tracefsMounts(): string[] {
  return parseMountInfo(fs.readFileSync("/proc/self/mountinfo", "utf8"))
    .filter((m) => m.fsType === "tracefs")
    .map((m) => m.mountPoint)
    .sort();
}

/** This process's descriptors of BPF objects and perf events. */
function bpfFds(): string[] {
  const links: string[] = [];
  for (const fd of fs.readdirSync("/proc/self/fd")) {
    try {
      const link = fs.readlinkSync(`/proc/self/fd/${fd}`);
      if (/^anon_inode:(bpf|\[perf_event\])/.test(link)) links.push(`${fd} ${link}`);
    } catch {
      // Closed while listing (the listing's own descriptor).
    }
  }
  return links;
}

beforeAll(async () => {
  requireRoot("The eBPF sensor test");
  ns = await Netns.create("bpf");
  for (const address of [SERVER_V6, CLIENT_V6]) {
    const added = await ns.exec(["ip", "-6", "addr", "add", `${address}/128`, "dev", "lo", "nodad"], { timeoutMs: 5_000 });
    expect(added.code, describeRun(added)).toBe(0);
  }
});

afterAll(async () => {
  await ns?.dispose();
});

/** A socket's records from one life (a socket address is reused once its socket is freed). */
interface Life {
  socket: bigint;
  records: SetStateRecord[];
}

/** Groups records by socket address, starting a new life after each CLOSE. */
function lives(records: SetStateRecord[]): Life[] {
  const open = new Map<bigint, Life>();
  const all: Life[] = [];
  for (const r of records) {
    let life = open.get(r.socket);
    if (!life) {
      life = { socket: r.socket, records: [] };
      open.set(r.socket, life);
      all.push(life);
    }
    life.records.push(r);
    if (r.newState === "CLOSE") open.delete(r.socket);
  }
  return all;
}

const transitions = (life: Life) => life.records.map((r) => `${r.oldState}->${r.newState}`).join(" ");

interface Run {
  records: SetStateRecord[];
  beaconPid: number;
  serverPid: number;
  ports: number[];
  sensor: SetStateSensor;
}

/**
 * Runs the listener and the beacon in the namespace with a sensor of the given options, and
 * collects the records of the test's addresses until every connection and the listener have
 * reached CLOSE (or 30 s have passed: the assertions then say what is missing). Without draining
 * while it runs, only what the output holds at the end is collected.
 */
async function traffic(
  options: SetStateSensorOptions,
  serverHost: string,
  connectHost: string,
  bindHost: string,
  count: number,
  drainWhileRunning = true,
): Promise<Run> {
  const sensor = SetStateSensor.start({ ringBytes: 4 << 20, ...options });
  const records: SetStateRecord[] = [];
  const mine = (r: SetStateRecord) =>
    (r.localPort === PORT || r.remotePort === PORT) &&
    [r.localAddress, r.remoteAddress].some((a) => a === serverHost || a === connectHost || a === bindHost);
  const collect = () => {
    for (const r of sensor.drain()) if (mine(r)) records.push(r);
  };
  const timer = drainWhileRunning ? setInterval(collect, 20) : undefined;
  try {
    const server = ns!.spawn([PYTHON, ...SERVER, SERVER_NAME, serverHost, String(PORT)]);
    const ready = await server.nextLine(10_000);
    expect(ready).toMatch(/^ready \d+$/);
    const serverPid = Number(ready.split(" ")[1]);
    const beacon = await ns!.exec([PYTHON, ...BEACON, "beacon", connectHost, String(PORT), String(count), bindHost, "0", "alternate"], { timeoutMs: 30_000 });
    expect(beacon.code, describeRun(beacon)).toBe(0);
    const client = JSON.parse(beacon.stdout) as ClientRun;
    const [beaconPid, ports] = [client.pid, localPorts(client)];
    server.closeInput();
    expect(await server.waitForExit(10_000)).toBe(true);

    const done = () =>
      lives(records).filter((l) => l.records.at(-1)?.newState === "CLOSE").length >= 2 * count + 1;
    const deadline = performance.now() + (drainWhileRunning ? 30_000 : 0);
    while (!done() && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    collect();
    return { records, beaconPid, serverPid, ports, sensor };
  } finally {
    clearInterval(timer);
  }
}

/** Checks one run's records: every connection, both ends, with their processes. */
function checkRun(run: Run, serverHost: string, connectHost: string, bindHost: string, count: number): void {
  const all = lives(run.records);
  const clients = all.filter((l) => l.records[0]!.remotePort === PORT && l.records[0]!.remoteAddress === connectHost);
  const accepted = all.filter((l) => l.records[0]!.localPort === PORT && l.records.some((r) => r.remotePort !== 0));
  const listeners = all.filter((l) => l.records[0]!.newState === "LISTEN");

  // Every connection the beacon made, each from connect to CLOSE.
  expect(clients.length, clients.map(transitions).join("\n")).toBe(count);
  const clientPorts: number[] = [];
  for (const life of clients) {
    const [first, ...rest] = life.records;
    expect(`${first!.oldState}->${first!.newState}`, transitions(life)).toBe("CLOSE->SYN_SENT");
    expect(life.records.at(-1)!.newState, transitions(life)).toBe("CLOSE");
    // One chain of states, none missing in between.
    life.records.slice(1).forEach((r, i) => expect(r.oldState, transitions(life)).toBe(life.records[i]!.newState));
    const localPort = rest[0]!.localPort;
    clientPorts.push(localPort);
    for (const r of life.records) {
      expect({ pid: r.pid, comm: r.comm, source: r.ownerSource }, transitions(life)).toEqual({ pid: run.beaconPid, comm: "beacon", source: "connect" });
      expect([r.localAddress, r.remoteAddress, r.remotePort]).toEqual([bindHost, connectHost, PORT]);
      expect(r.family).toBe(connectHost.includes(":") ? 6 : 4);
      expect(r.protocol).toBe(6);
    }
    // connect() changes the state before it picks the local port: only the first change may show 0.
    expect([0, localPort]).toContain(first!.localPort);
    for (const r of rest) expect(r.localPort).toBe(localPort);
  }
  expect(clientPorts.sort()).toEqual([...run.ports].sort());
  // Both ways of ending are among them: the beacon resets every other connection.
  expect(clients.some((l) => transitions(l).endsWith("ESTABLISHED->CLOSE"))).toBe(true);
  expect(clients.some((l) => transitions(l).includes("FIN_WAIT1"))).toBe(true);

  // Every accepted socket carries the listener's process, from its first change to CLOSE.
  expect(accepted.length, accepted.map(transitions).join("\n")).toBe(count);
  for (const life of accepted) {
    expect(life.records[0]!.newState, transitions(life)).toBe("SYN_RECV");
    expect(life.records.at(-1)!.newState, transitions(life)).toBe("CLOSE");
    for (const r of life.records) {
      expect({ pid: r.pid, comm: r.comm, source: r.ownerSource }, transitions(life)).toEqual({ pid: run.serverPid, comm: SERVER_NAME, source: "listener" });
    }
    const established = life.records.find((r) => r.newState === "ESTABLISHED")!;
    expect([established.localAddress, established.remoteAddress]).toEqual([connectHost, bindHost]);
  }
  expect(accepted.map((l) => l.records.find((r) => r.newState === "ESTABLISHED")!.remotePort).sort()).toEqual([...run.ports].sort());

  // The listener itself: LISTEN when the server listened, CLOSE when it exited.
  expect(listeners.map(transitions)).toEqual(["CLOSE->LISTEN LISTEN->CLOSE"]);
  for (const r of listeners[0]!.records) {
    expect({ pid: r.pid, comm: r.comm, source: r.ownerSource, local: r.localAddress }).toEqual({ pid: run.serverPid, comm: SERVER_NAME, source: "listen", local: serverHost });
  }
}

describe("the set-state sensor on this kernel", () => {
  test("loads (the verifier accepts the program), reports 200 short IPv4 connections of `beacon` and its listener's accepted sockets, loses nothing, and closes everything on stop", async () => {
    const mountsBefore = tracefsMounts();
    const fdsBefore = bpfFds();
    const result = await traffic({ output: "ringbuf" }, "0.0.0.0", SERVER_V4, CLIENT_V4, 200);
    try {
      expect(bpfFds().length).toBeGreaterThan(fdsBefore.length);
      expect(result.sensor.output).toBe("ringbuf");
      expect(result.sensor.program.instructions).toBeGreaterThan(100);
      expect(result.sensor.program.verifierProcessed).toBeGreaterThan(0);
      console.log(
        `set-state program: ${result.sensor.program.instructions} instructions, verifier processed ${result.sensor.program.verifierProcessed}; ` +
          `${result.records.length} records for 200 connections; counters ${JSON.stringify(result.sensor.counters())}; notes ${JSON.stringify(result.sensor.notes)}`,
      );
      checkRun(result, "0.0.0.0", SERVER_V4, CLIENT_V4, 200);
      expect(result.sensor.counters()).toMatchObject({ lostRecords: 0, ownerMapFull: 0, listenerMapFull: 0, undecodable: 0, missedChanges: 0 });
    } finally {
      result.sensor.stop();
    }
    expect(result.sensor.drain()).toEqual([]);
    expect(bpfFds()).toEqual(fdsBefore);
    expect(tracefsMounts()).toEqual(mountsBefore);
  });

  test("IPv6 to a listener on its own address (found by its exact address)", async () => {
    const result = await traffic({}, SERVER_V6, SERVER_V6, CLIENT_V6, 20);
    try {
      checkRun(result, SERVER_V6, SERVER_V6, CLIENT_V6, 20);
    } finally {
      result.sensor.stop();
    }
  });

  test("a ring too small for the traffic: what did not fit is counted as lost, not silently missing", async () => {
    // One page holds about 36 records; 20 connections make about 160.
    const result = await traffic({ output: "ringbuf", ringBytes: 4096 }, SERVER_V4, SERVER_V4, CLIENT_V4, 20, false);
    try {
      const { lostRecords } = result.sensor.counters();
      expect(result.records.length).toBeLessThan(40);
      // Lost records of other traffic on the machine count too, so at least this test's are there.
      expect(result.records.length + lostRecords).toBeGreaterThanOrEqual(8 * 20);
    } finally {
      result.sensor.stop();
    }
  });

  test("the same through per-CPU perf buffers (kernels before 5.8)", async () => {
    const result = await traffic({ output: "perf" }, SERVER_V4, SERVER_V4, CLIENT_V4, 20);
    try {
      expect(result.sensor.output).toBe("perf");
      checkRun(result, SERVER_V4, SERVER_V4, CLIENT_V4, 20);
      expect(result.sensor.counters().lostRecords).toBe(0);
    } finally {
      result.sensor.stop();
    }
  });
});

describe("what the kernel says of the loaded program", () => {
  test("its recursion misses are read where /proc shows them (bpf_prog_info, 5.12+)", () => {
    const good = new Assembler().mov64Imm(R0, 0).exit().assemble();
    const { fd } = loadTracepointProgram(good);
    try {
      const shown = /^recursion_misses:\s*(\d+)$/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"));
      expect(shown, "this kernel's fdinfo has recursion_misses").not.toBeNull();
      expect(progRecursionMisses(fd)).toBe(Number(shown![1]));
    } finally {
      closeFd(fd);
    }
  });
});

describe("when the sensor cannot run, it says why", () => {
  test("a program the verifier refuses comes back with the verifier's log", () => {
    // A load below offset 8 of a tracepoint's context: refused by the verifier.
    const bad = new Assembler().ldx("w", R0, R1, 0).exit().assemble();
    let caught: unknown;
    try {
      const { fd } = loadTracepointProgram(bad);
      closeFd(fd);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(SensorUnavailableError);
    const error = caught as SensorUnavailableError;
    expect(error.reason).toBe("verifier");
    expect(error.verifierLog).toMatch(/invalid bpf_context access/);
    expect(error.message).toMatch(/^eBPF sensor unavailable: the kernel refused the program \(EACCES\); the verifier said:\n[\s\S]*invalid bpf_context access/);
  });

  test("a process without capabilities is told which it needs", async () => {
    const result = await run(["setpriv", "--bounding-set=-all", "--inh-caps=-all", BUN, START_SCRIPT], { timeoutMs: 30_000 });
    expect(result.code, describeRun(result)).toBe(0);
    const outcome = JSON.parse(result.stdout.trim().split("\n").at(-1)!);
    expect(outcome).toMatchObject({ started: false, reason: "privilege" });
    expect(outcome.message).toMatch(/CAP_BPF and CAP_PERFMON \(Linux 5\.8\+\) or CAP_SYS_ADMIN/);
    // And with them, the same script starts it (the refusal above is the capabilities' doing).
    const root = await run([BUN, START_SCRIPT], { timeoutMs: 30_000 });
    expect(JSON.parse(root.stdout.trim().split("\n").at(-1)!)).toMatchObject({ started: true });
  });
});
