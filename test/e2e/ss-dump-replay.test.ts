/**
 * `list --replay FILE` also reads the raw dumps of iproute2's `ss -D FILE`: a dump of the
 * scenario's known sockets lists as ss lists it back through TCPDIAG_FILE (which shows the IPv4
 * part only: ss's replay stops at the dump's first NLMSG_DONE), and as a whole as ss listed the
 * namespace live when the dump was made.
 *
 * Needs root (network namespace), iproute2's ss and a built dist/sockwarden.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Netns, describeRun, requireRoot, run } from "./helpers/netns.ts";
import { EXECUTABLE, requireExecutable } from "./helpers/sockwarden.ts";
import { startScenario, type Scenario } from "./helpers/scenario.ts";
import { parseSsOutput, type SsEntry } from "./helpers/ss.ts";

let ns: Netns | undefined;
let scenario: Scenario;
let dir: string;
let dump: string;
/** `ss -Htna` inside the namespace, taken before and after the dump and equal both times. */
let liveSs: SsEntry[];

interface Listed {
  protocol: string;
  family: number;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  state: string;
  receiveQueue: number;
  sendQueue: number;
}

/** One comparable line per socket: what both ss and sockwarden print about it. */
function key(e: Listed | SsEntry): string {
  return `${e.protocol}/${e.family} ${e.localAddress}:${e.localPort} -> ${e.remoteAddress}:${e.remotePort} ${e.state} q=${e.receiveQueue}/${e.sendQueue}`;
}

/** `ss -Htna` prints no netid column; the parser of `ss -tuanpH` lines wants one. */
function parseTcpOnly(text: string): SsEntry[] {
  return parseSsOutput(
    text
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => `tcp ${l}`)
      .join("\n"),
  );
}

async function ssTcp(extraEnv?: Record<string, string>): Promise<SsEntry[]> {
  const r = await ns!.exec(["ss", "-Htna"], { timeoutMs: 10_000, env: extraEnv ? { ...process.env, ...extraEnv } : undefined });
  if (r.code !== 0) throw new Error(`ss failed: ${describeRun(r)}`);
  return parseTcpOnly(r.stdout);
}

async function replay(...args: string[]): Promise<{ code: number | null; stderr: string; listed: Listed[] }> {
  // Outside the namespace: nothing of this box gets in.
  const r = await run([EXECUTABLE, "list", "--json", "-q", "--replay", dump, ...args], { timeoutMs: 20_000 });
  return { code: r.code, stderr: r.stderr, listed: r.code === 0 ? (JSON.parse(r.stdout) as Listed[]) : [] };
}

beforeAll(async () => {
  requireRoot();
  requireExecutable();
  ns = await Netns.create("ssd");
  scenario = await startScenario(ns);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "sw-ssdump-"));
  dump = path.join(dir, "ss.dump");
  // The scenario's sockets hold still (its timed states outlast the test), but a listing taken
  // before and after the dump must agree for the live one to stand for the dump.
  for (let attempt = 0; attempt < 3; attempt++) {
    const before = await ssTcp();
    const made = await ns.exec(["ss", "-a", "-D", dump], { timeoutMs: 10_000 });
    if (made.code !== 0) throw new Error(`ss -D failed: ${describeRun(made)}`);
    const after = await ssTcp();
    if (JSON.stringify(before) === JSON.stringify(after)) {
      liveSs = after;
      return;
    }
  }
  throw new Error("the namespace's sockets kept changing while ss -D ran");
});

afterAll(async () => {
  await ns?.dispose();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe("replaying an ss -D dump", () => {
  it("lists what ss lists back from the same dump, and the rest as ss saw it live", async () => {
    scenario.assertTimeWaitAlive();
    const ssReplayed = await ssTcp({ TCPDIAG_FILE: dump });
    const all = await replay("-a");
    expect(all.code, all.stderr).toBe(0);
    const ours = all.listed.map(key).sort();
    // ss's replay shows the IPv4 dump only; ours holds it exactly.
    expect(ssReplayed.length).toBeGreaterThan(0);
    expect(ours.filter((k) => k.startsWith("tcp/4 "))).toEqual(ssReplayed.map(key).sort());
    // Both families together are what ss listed live in the namespace.
    expect(ours).toEqual(liveSs.map(key).sort());
    expect(all.listed.some((e) => e.family === 6)).toBe(true);
    const described = scenario.description.sockets.filter((s) => s.protocol === "tcp").length;
    expect(all.listed.length).toBe(described);
  });

  it("filters a dump as it filters a live listing", async () => {
    const listener = liveSs.find((e) => e.state === "LISTEN" && e.family === 4)!;
    const byPort = await replay("-a", "--port", String(listener.localPort));
    expect(byPort.code, byPort.stderr).toBe(0);
    const expected = liveSs.filter((e) => e.localPort === listener.localPort || e.remotePort === listener.localPort);
    expect(byPort.listed.map(key).sort()).toEqual(expected.map(key).sort());
    const listening = await replay("--state", "listen", "-6");
    expect(listening.listed.map(key).sort()).toEqual(liveSs.filter((e) => e.state === "LISTEN" && e.family === 6).map(key).sort());
    // ss -D dumps TCP only: a UDP listing of it is empty, not an error.
    const udp = await replay("-a", "-u");
    expect(udp.code, udp.stderr).toBe(0);
    expect(udp.listed).toEqual([]);
  });

  it("a cut dump is refused naming the file", async () => {
    const cut = path.join(dir, "cut.dump");
    const bytes = fs.readFileSync(dump);
    fs.writeFileSync(cut, bytes.subarray(0, bytes.length - 30));
    const r = await run([EXECUTABLE, "list", "-a", "--replay", cut], { timeoutMs: 10_000 });
    expect(r.code).toBe(3);
    expect(r.stderr.trim()).toMatch(new RegExp(`^sockwarden: ${cut.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: not a whole ss -D dump: netlink message at offset \\d+ is truncated`));
  });
});
