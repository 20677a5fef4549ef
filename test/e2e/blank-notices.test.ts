/**
 * Destroy notices without addresses (a socket created and closed unbound, a listener already
 * unhashed when the kernel tells of it) never become events: a rule that records every event it
 * is handed sees none of `tcp 0.0.0.0:0 -> 0.0.0.0:0`, with polling and with the eBPF sensor.
 *
 * Needs root (network namespace, the sensor) and a built dist/sockwarden.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { BackgroundProcess, Netns, requireRoot } from "./helpers/netns.ts";
import { EXECUTABLE, requireExecutable } from "./helpers/sockwarden.ts";

const RECORD_ALL = `import { defineRule } from "sockwarden";
export default defineRule({ name: "record-all", on: ["opened", "closed", "state-changed"], handle(e, act) {
  const p = e.endpoint;
  act.log(JSON.stringify([e.type, p.protocol, p.localAddress, p.localPort, p.remoteAddress, p.remotePort, p.state, p.process ? p.process.name : null]));
} });
`;

// Sockets that end with no address: unbound TCP and UDP over both families, and a listener that
// goes away between two looks. Last, a bound UDP socket closed at once: its notice is queued
// after theirs and held as long, so once its events are out theirs would have been too.
const CHURN = `
import socket
for fam, typ in [(socket.AF_INET, socket.SOCK_STREAM), (socket.AF_INET6, socket.SOCK_STREAM), (socket.AF_INET, socket.SOCK_DGRAM), (socket.AF_INET6, socket.SOCK_DGRAM)]:
    socket.socket(fam, typ).close()
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(); l.close()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0)); port = u.getsockname()[1]; u.close()
print(port)
`;

type Seen = [string, string, string, number, string, number, string | null, string | null];

let ns: Netns | undefined;
let dir: string;
let rule: string;

beforeAll(async () => {
  requireRoot();
  requireExecutable();
  ns = await Netns.create("blank");
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "sw-blank-"));
  rule = path.join(dir, "record-all.ts");
  fs.writeFileSync(rule, RECORD_ALL);
});

afterAll(async () => {
  await ns?.dispose();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startDaemon(sensor: string): Promise<BackgroundProcess> {
  const d = ns!.spawn([EXECUTABLE, "run", "--interval", "0.2", "--sensor", sensor, "--rule", rule, "--sink", "stdout:ndjson"]);
  const end = performance.now() + 30_000;
  while (!/running /.test(d.stderr) && performance.now() < end && !d.hasExited) await sleep(50);
  if (!/running /.test(d.stderr)) {
    await d.stop();
    throw new Error(`the daemon did not start; stderr:\n${d.stderr}`);
  }
  return d;
}

/** What the rule was handed, in order, until the closed event of the UDP socket on `port`. */
async function seenUntilClosed(d: BackgroundProcess, port: number): Promise<Seen[]> {
  const seen: Seen[] = [];
  for (let i = 0; i < 10_000; i++) {
    const record = JSON.parse(await d.nextLine(15_000)) as { kind: string; rule?: string; message: string };
    if (record.kind !== "log" || record.rule !== "record-all") continue;
    const e = JSON.parse(record.message) as Seen;
    seen.push(e);
    if (e[0] === "closed" && e[1] === "udp" && e[2] === "127.0.0.1" && e[3] === port) return seen;
  }
  throw new Error("too many events before the last socket's close");
}

const blank = (e: Seen) => e[3] === 0 && e[5] === 0 && ["0.0.0.0", "::"].includes(e[2]) && ["0.0.0.0", "::"].includes(e[4]);

describe.each(["poll", "ebpf"])("run --sensor %s", (sensor) => {
  it("hands rules no event about a socket without addresses", { timeout: 90_000 }, async () => {
    const daemon = await startDaemon(sensor);
    try {
      const churn = await ns!.exec(["/usr/bin/python3", "-c", CHURN], { timeoutMs: 10_000 });
      expect(churn.code, churn.stderr).toBe(0);
      const port = Number(churn.stdout.trim());
      const seen = await seenUntilClosed(daemon, port);
      // The last socket's own notice made its events: notices were read and turned into events.
      expect(seen.filter((e) => e[1] === "udp" && e[3] === port).map((e) => e[0])).toEqual(["opened", "closed"]);
      expect(seen.filter(blank)).toEqual([]);
    } finally {
      await daemon.stop();
    }
  });
});
