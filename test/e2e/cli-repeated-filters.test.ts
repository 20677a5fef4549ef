/**
 * A repeated `--port`, `--local` or `--remote` is one more choice, as its comma form is
 * (`--port A --port B` lists what `--port A,B` lists), while different options narrow each
 * other; `close --remote-port` likewise. Two listeners and one connection to each, in a private
 * namespace, through the executable.
 *
 * Needs root (network namespace) and a built dist/sockwarden.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { keyWithPids, sortedKeys } from "./helpers/compare.ts";
import { type BackgroundProcess, Netns, describeRun, requireRoot } from "./helpers/netns.ts";
import { PYTHON } from "./helpers/scenario.ts";
import { type JsonEndpoint, listJson, requireExecutable, runSockwarden } from "./helpers/sockwarden.ts";

// Two listeners on 127.0.0.1 and a connection to each; prints their ports, then holds them
// until stdin closes (two minutes at most).
const HOLDER = [
  "import socket, sys, select",
  "held = []",
  "for _ in range(2):",
  "    s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); held.append(s)",
  "    c = socket.create_connection(s.getsockname()); a, _ = s.accept(); held += [c, a]",
  "print(held[0].getsockname()[1], held[3].getsockname()[1], flush=True)",
  "select.select([sys.stdin], [], [], 120)",
].join("\n");

let ns: Netns | undefined;
let holder: BackgroundProcess;
let a: number;
let b: number;
let dir: string;

beforeAll(async () => {
  requireRoot();
  requireExecutable();
  ns = await Netns.create("rf");
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "sw-repeat-"));
  holder = ns.spawn([PYTHON, "-c", HOLDER]);
  [a, b] = (await holder.nextLine(15_000)).split(" ").map(Number) as [number, number];
  expect(a).toBeGreaterThan(0);
  expect(b).toBeGreaterThan(0);
});

afterAll(async () => {
  await holder?.stop();
  await ns?.dispose();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const keys = (endpoints: readonly JsonEndpoint[]) => sortedKeys(endpoints, keyWithPids);
const ports = (endpoints: readonly JsonEndpoint[]) => endpoints.map((e) => `${e.localPort}>${e.remotePort}`).sort();

describe("repeated selection options", () => {
  it("`--port A --port B` lists what `--port A,B` lists: both listeners and both connections", async () => {
    const repeated = await listJson(ns!, ["-a", "--port", String(a), "--port", String(b)]);
    const comma = await listJson(ns!, ["-a", "--port", `${a},${b}`]);
    expect(keys(repeated)).toEqual(keys(comma));
    // Each port: its listener, the client's end and the accepted end.
    expect(repeated.filter((e) => e.localPort === a || e.remotePort === a)).toHaveLength(3);
    expect(repeated.filter((e) => e.localPort === b || e.remotePort === b)).toHaveLength(3);
  });

  it("the table shows both ports too", async () => {
    const r = await runSockwarden(ns!, ["list", "-a", "-n", "--port", String(a), "--port", String(b)]);
    expect(r.code, describeRun(r)).toBe(0);
    expect(r.stdout).toContain(`127.0.0.1:${a} `);
    expect(r.stdout).toContain(`127.0.0.1:${b} `);
  });

  it("a repeated --local or --remote is one more choice too", async () => {
    const locals = await listJson(ns!, ["-a", "--local", `:${a}`, "--local", `:${b}`]);
    expect(ports(locals.filter((e) => e.remotePort === 0))).toEqual([`${a}>0`, `${b}>0`].sort());
    expect(locals).toHaveLength(4);
    const remotes = await listJson(ns!, ["--remote", `127.0.0.1:${a}`, "--remote", `127.0.0.1:${b}`]);
    expect(remotes.map((e) => e.remotePort).sort()).toEqual([a, b].sort());
  });

  it("different options still narrow each other", async () => {
    const narrowed = await listJson(ns!, ["-a", "--port", String(a), "--port", String(b), "--local", `:${a}`]);
    expect(ports(narrowed)).toEqual([`${a}>0`, `${a}>${narrowed.find((e) => e.remotePort !== 0)?.remotePort}`].sort());
    expect(narrowed).toHaveLength(2);
  });

  it("close --remote-port A --remote-port B picks both connections", async () => {
    const r = await runSockwarden(ns!, ["close", "--audit-log", path.join(dir, "audit.log"), "--dry-run", "--remote-port", String(a), "--remote-port", String(b)]);
    expect(r.code, describeRun(r)).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines.some((l) => l.includes(`-> 127.0.0.1:${a} `))).toBe(true);
    expect(lines.some((l) => l.includes(`-> 127.0.0.1:${b} `))).toBe(true);
  });
});
