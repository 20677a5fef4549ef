/**
 * `sockwarden port` and `sockwarden proc` against ss, in a private network namespace where one
 * process holds an SMTP-port listener, a connection to it (both ends) and a UDP socket on the DNS
 * port, and a second process holds one more connection to the listener. The expected endpoints
 * are exactly what `ss -tuanp` reports in that namespace.
 *
 * Needs root (network namespace, ports below 1024) and a built dist/sockwarden.
 */

import { readFileSync, readdirSync, readlinkSync, statSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keyWithPids, sortedKeys, stableAgainstSs } from "./helpers/compare.ts";
import { type BackgroundProcess, Netns, type RunResult, describeRun, requireRoot } from "./helpers/netns.ts";
import { PYTHON } from "./helpers/scenario.ts";
import { checkEndpointShape } from "./helpers/shape.ts";
import { type JsonEndpoint, type JsonProcess, requireExecutable, runSockwarden } from "./helpers/sockwarden.ts";
import type { SsEntry } from "./helpers/ss.ts";

const SMTP = 25;
const DOMAIN = 53;

/** Listener, one connection to itself, a UDP socket; accepts more until stdin closes. */
const SERVER = [
  "import json, os, select, socket, sys",
  "srv = socket.socket()",
  "srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)",
  `srv.bind(("127.0.0.1", ${SMTP}))`,
  "srv.listen(8)",
  `cli = socket.create_connection(("127.0.0.1", ${SMTP}))`,
  "acc, _ = srv.accept()",
  "udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)",
  `udp.bind(("127.0.0.1", ${DOMAIN}))`,
  "held = [srv, cli, acc, udp]",
  'print(json.dumps({"pid": os.getpid()}), flush=True)',
  "while True:",
  "    ready, _, _ = select.select([sys.stdin, srv], [], [], 120)",
  "    if not ready or sys.stdin in ready:",
  "        break",
  "    held.append(srv.accept()[0])",
  '    print("accepted", flush=True)',
].join("\n");

/** One connection to the listener, held until stdin closes (at most two minutes). */
const PEER = [
  "import os, select, socket, sys",
  `c = socket.create_connection(("127.0.0.1", ${SMTP}))`,
  "print(os.getpid(), flush=True)",
  "select.select([sys.stdin], [], [], 120)",
].join("\n");

const SERVER_ARGV = [PYTHON, "-c", SERVER];

/** A stack frame as Node, Bun and JavaScriptCore print them. */
const STACK_FRAME = /^\s*at\s|@\S+:\d+:\d+|\.(ts|js):\d+:\d+/m;

interface PortJson {
  port: number;
  services: Array<{ name: string; protocol: string; aliases: string[]; description: string }>;
  endpoints: JsonEndpoint[];
}

interface ProcJson {
  process: JsonProcess & {
    ppidName: string | null;
    state: string | null;
    threads: number | null;
    rssKiB: number | null;
    fdCount: number | null;
    cgroup: string | null;
    unit: string | null;
    unitUid: number | null;
    netns: number | null;
  };
  endpoints: JsonEndpoint[];
}

let ns: Netns | undefined;
let server: BackgroundProcess;
let serverPid: number;
let peerPid: number;

beforeAll(async () => {
  requireRoot();
  requireExecutable();
  ns = await Netns.create("pp");
  server = ns.spawn(SERVER_ARGV);
  serverPid = (JSON.parse(await server.nextLine(15_000)) as { pid: number }).pid;
  const peer = ns.spawn([PYTHON, "-c", PEER]);
  peerPid = Number(await peer.nextLine(15_000));
  expect(await server.nextLine(15_000)).toBe("accepted");
});

afterAll(async () => {
  await ns?.dispose();
});

function parseJson<T>(result: RunResult): T {
  expect(result.code, describeRun(result)).toBe(0);
  try {
    return JSON.parse(result.stdout) as T;
  } catch (error) {
    throw new Error(`output is not JSON (${(error as Error).message}): ${describeRun(result)}`);
  }
}

const keys = (items: ReadonlyArray<SsEntry | JsonEndpoint>) => sortedKeys(items, keyWithPids);

describe("port", () => {
  it("--json: the services table's entries and exactly the endpoints ss shows on the port", async () => {
    const { ss, result } = await stableAgainstSs(ns!, () => runSockwarden(ns!, ["port", String(SMTP), "--json"]));
    const doc = parseJson<PortJson>(result);
    expect(Object.keys(doc)).toEqual(["port", "services", "endpoints"]);
    expect(doc.port).toBe(SMTP);
    expect(doc.services).toEqual([
      { name: "smtp", protocol: "tcp", aliases: ["mail"], description: "Simple Mail Transfer Protocol" },
    ]);
    const expected = ss.filter((e) => e.localPort === SMTP || e.remotePort === SMTP);
    // Listener, two accepted ends and two client ends.
    expect(expected).toHaveLength(5);
    expect(keys(doc.endpoints)).toEqual(keys(expected));
    for (const endpoint of doc.endpoints) checkEndpointShape(endpoint);
    const listener = doc.endpoints.find((e) => e.state === "LISTEN");
    expect(listener?.process?.pid).toBe(serverPid);
    expect(listener?.process?.name).toBe("python3");
  });

  it("takes a service name, and -u / -t restrict both the services and the endpoints", async () => {
    const byName = parseJson<PortJson>(await runSockwarden(ns!, ["port", "smtp", "--json"]));
    expect(byName.port).toBe(SMTP);
    expect(byName.endpoints).toHaveLength(5);

    const udp = parseJson<PortJson>(await runSockwarden(ns!, ["port", "domain", "-u", "--json"]));
    expect(udp.port).toBe(DOMAIN);
    expect(udp.services.map((s) => `${s.name}/${s.protocol}`)).toEqual(["domain/udp"]);
    expect(udp.endpoints.map((e) => `${e.protocol} ${e.localAddress}:${e.localPort} ${e.pids.join(",")}`)).toEqual([
      `udp 127.0.0.1:${DOMAIN} ${serverPid}`,
    ]);

    const both = parseJson<PortJson>(await runSockwarden(ns!, ["port", String(DOMAIN), "--json"]));
    expect(both.services.map((s) => `${s.name}/${s.protocol}`)).toEqual(["domain/tcp", "domain/udp"]);

    const tcpOnly = parseJson<PortJson>(await runSockwarden(ns!, ["port", String(DOMAIN), "-t", "--json"]));
    expect(tcpOnly.services.map((s) => `${s.name}/${s.protocol}`)).toEqual(["domain/tcp"]);
    expect(tcpOnly.endpoints).toEqual([]);
  });

  it("prints the services and a numeric endpoint table", async () => {
    const result = await runSockwarden(ns!, ["port", String(SMTP)]);
    expect(result.code, describeRun(result)).toBe(0);
    expect(result.stdout).toMatch(/^smtp\s+tcp\s+mail\s+Simple Mail Transfer Protocol$/m);
    expect(result.stdout).toMatch(new RegExp(`^tcp\\s+127\\.0\\.0\\.1:${SMTP}\\s+0\\.0\\.0\\.0:\\*\\s+LISTEN\\s+${serverPid}/python3$`, "m"));
    expect(result.stdout).toMatch(new RegExp(`127\\.0\\.0\\.1:${SMTP}\\s+ESTABLISHED\\s+${peerPid}/python3$`, "m"));
    const rows = result.stdout.split("\n").filter((line) => /^tcp\s/.test(line));
    expect(rows).toHaveLength(5);
  });

  it("says so when nothing is known about a port and nothing uses it", async () => {
    const result = await runSockwarden(ns!, ["port", "31337"]);
    expect(result.code, describeRun(result)).toBe(0);
    expect(result.stdout).toContain("no entry for port 31337");
    expect(result.stdout).toContain("No endpoint uses port 31337 now.");
    const doc = parseJson<PortJson>(await runSockwarden(ns!, ["port", "31337", "--json"]));
    expect(doc).toEqual({ port: 31337, services: [], endpoints: [] });
  });
});

describe("proc", () => {
  it("--json: the process's properties and exactly the endpoints ss gives it", async () => {
    const { ss, result } = await stableAgainstSs(ns!, () => runSockwarden(ns!, ["proc", String(serverPid), "--json"]));
    const doc = parseJson<ProcJson>(result);
    expect(Object.keys(doc)).toEqual(["process", "endpoints"]);
    const p = doc.process;
    expect(p.pid).toBe(serverPid);
    expect(p.name).toBe("python3");
    expect(p.path).toBe(readlinkSync(`/proc/${serverPid}/exe`));
    expect(p.cmdline).toBe(SERVER_ARGV.join(" "));
    expect(p.uid).toBe(0);
    expect(p.user).toBe("root");
    expect(Math.abs(Date.parse(p.startTime!) - Date.now())).toBeLessThan(5 * 60_000);
    // `ip netns exec` execs the command, so the parent is this test process.
    expect(p.ppid).toBe(process.pid);
    expect(p.ppidName).toBe(readFileSync(`/proc/${process.pid}/comm`, "utf8").trim());
    expect(p.state).toMatch(/^[RS] \(/);
    expect(p.threads).toBe(1);
    expect(p.rssKiB).toBeGreaterThan(0);
    expect(p.fdCount).toBe(readdirSync(`/proc/${serverPid}/fd`).length);
    // The namespace's inode is the bind mount's under /run/netns.
    expect(p.netns).toBe(statSync(`/run/netns/${ns!.name}`).ino);
    const cgroupPaths = readFileSync(`/proc/${serverPid}/cgroup`, "utf8")
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => line.split(":").slice(2).join(":"));
    expect(cgroupPaths).toContain(p.cgroup);

    const expected = ss.filter((e) => e.pids.includes(serverPid));
    // Listener, client end, two accepted ends, UDP.
    expect(expected).toHaveLength(5);
    expect(keys(doc.endpoints)).toEqual(keys(expected));
    for (const endpoint of doc.endpoints) checkEndpointShape(endpoint);
  });

  it("--json for the peer lists its one connection only", async () => {
    const { ss, result } = await stableAgainstSs(ns!, () => runSockwarden(ns!, ["proc", String(peerPid), "--json"]));
    const doc = parseJson<ProcJson>(result);
    expect(doc.process.pid).toBe(peerPid);
    const expected = ss.filter((e) => e.pids.includes(peerPid));
    expect(expected).toHaveLength(1);
    expect(keys(doc.endpoints)).toEqual(keys(expected));
    expect(doc.endpoints[0]?.remotePort).toBe(SMTP);
  });

  it("prints aligned properties, then the endpoints table", async () => {
    const result = await runSockwarden(ns!, ["proc", String(serverPid), "-n"]);
    expect(result.code, describeRun(result)).toBe(0);
    const lines = result.stdout.split("\n");
    expect(lines[0]).toBe(`PID:          ${serverPid}`);
    expect(lines).toContain("Name:         python3");
    expect(lines).toContain(`Parent:       ${process.pid} (${readFileSync(`/proc/${process.pid}/comm`, "utf8").trim()})`);
    expect(lines.find((l) => l.startsWith("Command line:"))).toMatch(/^Command line: \/usr\/bin\/python3 -c import json/);
    // The script's newlines are shown escaped, never as line breaks.
    expect(result.stdout).toContain("\\x0asrv = socket.socket()");
    expect(lines).toContain("Endpoints (5):");
    expect(lines.filter((l) => /^(tcp|udp)\s/.test(l) && l.endsWith(`${serverPid}/python3`))).toHaveLength(5);
  });
});

describe("errors", () => {
  let pidMax: number;
  beforeAll(() => {
    pidMax = Number(readFileSync("/proc/sys/kernel/pid_max", "utf8"));
  });

  it.each([
    ["a port out of range", ["port", "70000"], 2],
    ["an unknown service name", ["port", "no-such-service"], 2],
    ["a service name only UDP has, with -t", ["port", "ntp", "-t"], 2],
    ["a PID that is not a number", ["proc", "nginx"], 2],
    ["a missing argument", ["proc"], 2],
  ] as const)("%s exits %i with one line on stderr", async (_what, args, code) => {
    const result = await runSockwarden(ns!, [...args]);
    expect(result.code, describeRun(result)).toBe(code);
    expect(result.stderr.split("\n").filter((line) => line.trim() !== ""), describeRun(result)).toHaveLength(1);
    expect(result.stderr).not.toMatch(STACK_FRAME);
    expect(result.stdout).toBe("");
  });

  it("a PID no process has exits 1 and says so in one line", async () => {
    // PIDs are always below pid_max.
    const result = await runSockwarden(ns!, ["proc", String(pidMax)]);
    expect(result.code, describeRun(result)).toBe(1);
    expect(result.stderr).toBe(`sockwarden: no process with PID ${pidMax}\n`);
    expect(result.stdout).toBe("");
    const json = await runSockwarden(ns!, ["proc", String(pidMax), "--json"]);
    expect(json.code, describeRun(json)).toBe(1);
    expect(json.stdout).toBe("");
  });
});
