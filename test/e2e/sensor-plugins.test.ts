/**
 * `sockwarden run --sensor ebpf` with each bundled plugin, in a network namespace made here,
 * against connections too short for any refresh to see:
 * - connection-flood names `beacon` (name and PID) for 40 connections of about 5 ms;
 * - outbound-allowlist alerts on one connection of about 5 ms to a public address (a documentation
 *   address put on the namespace's loopback), with the process and the real address and port;
 * - smtp-guard closes a port-25 connection of a process named curl before the server's banner,
 *   sent 50 ms after the accept, reaches it (so before the client's first word), and records the
 *   close with the process in the audit log; a client named like a mail server (exim4) gets its
 *   banner. smtp-guard closes every other name (its mailServers option says who may connect).
 *
 * SOCKWARDEN_E2E_SENSOR=poll runs the same checks with polling, which fails them: the short
 * connections come from destroy notices, without their process, and the close comes with the
 * next refresh, after the banner.
 *
 * Needs root (network namespace, the sensor's capabilities, closing sockets) and a built
 * dist/sockwarden.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type BackgroundProcess, Netns, describeRun, requireRoot } from "./helpers/netns.ts";
import { EXECUTABLE, requireExecutable } from "./helpers/sockwarden.ts";
import { CONNECTIONS, LISTENER, localPorts, type ClientRun } from "../support/traffic/scripts.ts";

const SENSOR = process.env.SOCKWARDEN_E2E_SENSOR ?? "ebpf";
const PYTHON = "/usr/bin/python3";
const helper = (name: string) => fileURLToPath(new URL(`./helpers/${name}`, import.meta.url));
const PUBLIC = "203.0.113.10";
const BANNER_DELAY_MS = 50;

interface SinkRecord {
  kind: string;
  rule?: string;
  message: string;
  action?: string;
  outcome?: string;
}

let ns: Netns | undefined;
let dir: string;
const running: BackgroundProcess[] = [];

beforeAll(async () => {
  requireRoot("The sensor's plugin test");
  requireExecutable();
  ns = await Netns.create("plug");
  const added = await ns.exec(["ip", "addr", "add", `${PUBLIC}/32`, "dev", "lo"]);
  expect(added.code, describeRun(added)).toBe(0);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "sw-sensor-plugins-"));
});

afterEach(async () => {
  for (const p of running.splice(0)) await p.stop();
});

afterAll(async () => {
  await ns?.dispose();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function spawn(argv: string[]): BackgroundProcess {
  const p = ns!.spawn(argv);
  running.push(p);
  return p;
}

/** The daemon with one plugin, once it says it runs (its sensor is attached before that). */
async function startDaemon(plugin: string, audit: string): Promise<BackgroundProcess> {
  const d = spawn([EXECUTABLE, "run", "--sensor", SENSOR, "--interval", "1", "--rule", plugin, "--audit-log", audit, "--sink", "stdout:ndjson"]);
  const end = performance.now() + 30_000;
  while (!/running /.test(d.stderr) && performance.now() < end && !d.hasExited) await new Promise((r) => setTimeout(r, 50));
  expect(d.stderr, "daemon start").toMatch(/running /);
  return d;
}

/** Reads the daemon's records until one matches; throws with what came when time runs out. */
async function recordMatching(daemon: BackgroundProcess, seen: SinkRecord[], match: (r: SinkRecord) => boolean, timeoutMs = 15_000): Promise<SinkRecord> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const found = seen.find(match);
    if (found) return found;
    let line: string;
    try {
      line = await daemon.nextLine(Math.max(1, deadline - performance.now()));
    } catch (err) {
      throw new Error(`${(err as Error).message}\nrecords so far: ${JSON.stringify(seen)}`);
    }
    seen.push(JSON.parse(line) as SinkRecord);
  }
}

/** Everything the daemon told its sink, once it has stopped. */
async function allRecords(daemon: BackgroundProcess, seen: SinkRecord[]): Promise<SinkRecord[]> {
  expect(await daemon.terminate(), `the daemon did not stop; stderr:\n${daemon.stderr}`).toBe(true);
  return [...seen, ...daemon.remainingLines().map((l) => JSON.parse(l) as SinkRecord)];
}

/**
 * Client ports are bound from here up, below the namespace's ephemeral range (EPHEMERAL_PORTS_FROM),
 * each once: ephemeral ports may be given out again after a reset, and the connections would
 * then not be told apart by their ports.
 */
let nextClientPort = 21_000;

async function beacon(host: string, port: number, count: number): Promise<{ pid: number; ports: number[] }> {
  const first = nextClientPort;
  nextClientPort += count;
  const r = await ns!.exec([PYTHON, ...CONNECTIONS, "beacon", host, String(port), String(count), host, String(first), "alternate", "5"], { timeoutMs: 20_000 });
  expect(r.code, describeRun(r)).toBe(0);
  const client = JSON.parse(r.stdout) as ClientRun;
  return { pid: client.pid, ports: localPorts(client) };
}

async function listener(host: string, port: number): Promise<void> {
  const server = spawn([PYTHON, ...LISTENER, "sw-listener", host, String(port)]);
  expect(await server.nextLine(15_000)).toMatch(/^ready \d+$/);
}

describe(`run --sensor ${SENSOR} with the bundled plugins`, { timeout: 120_000 }, () => {
  it("connection-flood names the process that opens 40 connections of 5 ms", async () => {
    await listener("127.0.0.1", 7800);
    const daemon = await startDaemon("connection-flood", path.join(dir, "audit-flood.log"));
    const seen: SinkRecord[] = [];
    const { pid, ports } = await beacon("127.0.0.1", 7800, 40);
    expect(new Set(ports).size).toBe(40);
    // The rule's default: more than 30 within 10 s. The alert comes at the 31st connection.
    const alert = await recordMatching(daemon, seen, (r) => r.kind === "alert" && r.rule === "connection-flood");
    expect(alert.message).toMatch(new RegExp(`^connection flood: beacon \\(pid ${pid}\\) opened 31 connections in \\d+\\.\\d s \\(more than 30 within 10 s\\), latest to 127\\.0\\.0\\.1:7800$`));
    // One alert: the accepted sides belong to a listening port and are not counted.
    const records = await allRecords(daemon, seen);
    expect(records.filter((r) => r.kind === "alert")).toHaveLength(1);
  });

  it("outbound-allowlist alerts on one 5 ms connection to a public address, with its process and address", async () => {
    await listener(PUBLIC, 443);
    const daemon = await startDaemon("outbound-allowlist", path.join(dir, "audit-outbound.log"));
    const seen: SinkRecord[] = [];
    const { pid, ports } = await beacon(PUBLIC, 443, 1);
    expect(ports).toHaveLength(1);
    const alert = await recordMatching(daemon, seen, (r) => r.kind === "alert" && r.rule === "outbound-allowlist");
    expect(alert.message).toBe(`beacon (pid ${pid}) is not allowed to connect to public addresses (tcp ${PUBLIC}:443)`);
    const records = await allRecords(daemon, seen);
    expect(records.filter((r) => r.kind === "alert")).toHaveLength(1);
  });

  it("smtp-guard closes curl's port-25 connection before the server's banner reaches it; a mail server's is left alone", async () => {
    const server = spawn([PYTHON, helper("smtp-banner.py"), "25", String(BANNER_DELAY_MS)]);
    expect(await server.nextLine(10_000)).toBe("ready");
    const audit = path.join(dir, "audit-smtp.log");
    const daemon = await startDaemon("smtp-guard", audit);
    const ask = async (name: string) => {
      server.child.stdin!.write(`connect ${name}\n`);
      return JSON.parse(await server.nextLine(15_000)) as { name: string; pid: number; port: number; result: string };
    };
    // The mail server first: the rule has run once before curl comes.
    const exim = await ask("exim4");
    expect(exim.result).toBe("banner");
    const curl = await ask("curl");
    expect(curl.result, `daemon stderr:\n${daemon.stderr}`).toMatch(/^(ECONNABORTED|ECONNRESET|EPIPE|eof)$/);
    const records = await allRecords(daemon, []);
    expect(records.filter((r) => r.kind === "action").map((r) => [r.action, r.outcome, r.rule])).toEqual([["close", "closed", "smtp-guard"]]);
    const lines = fs.readFileSync(audit, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      action: "close", outcome: "closed", requestedBy: "smtp-guard", reason: "curl is not a mail server",
      endpoint: { protocol: "tcp", localAddress: "127.0.0.1", localPort: curl.port, remoteAddress: "127.0.0.1", remotePort: 25 },
      process: { name: "curl", pid: curl.pid },
    });
  });
});
