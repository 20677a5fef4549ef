/**
 * The soak's traffic generator (test/support/traffic/traffic.py soak) itself: a short connection still in
 * flight when "stop" comes is followed to its outcome, not counted as failed; one that gets no
 * answer before the drain runs out is counted as stopped, apart from the failures. The server is
 * frozen (SIGSTOP) around "stop" so that connections are certainly in flight then.
 *
 * Needs root (network namespace).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Netns, requireRoot } from "./helpers/netns.ts";
import { SoakProcess, sleep } from "../support/soak/soak-proc.ts";
import { type ChurnSummary } from "../support/soak/soak-run.ts";
import { PYTHON, SOAK_TRAFFIC as TRAFFIC } from "../support/traffic/scripts.ts";

let ns: Netns | undefined;
let dir: string;

beforeAll(async () => {
  requireRoot();
  ns = await Netns.create("traffic");
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "sw-traffic-"));
});

afterAll(async () => {
  await ns?.dispose();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * Runs churn traffic for a moment, freezes the server, says "stop" while connections wait for
 * it, and thaws it after `thawAfterMs` (never, when null). Returns the churn summary.
 */
async function stopWhileInFlight(name: string, churnTimeout: number, thawAfterMs: number | null): Promise<Required<ChurnSummary>> {
  const out = path.join(dir, name);
  const traffic = new SoakProcess(ns!.wrap([PYTHON, ...TRAFFIC, JSON.stringify({
    out, churnRate: 300, churnClose: "rst", churnTimeout, classes: ["curl-2525"], classRate: 1, hold: 0.5, lifetime: 120,
  })]));
  let serverPid = 0;
  try {
    serverPid = Number((await traffic.waitForLine(/^ready \d+$/, 20_000)).split(" ")[1]);
    await sleep(1000);
    process.kill(serverPid, "SIGSTOP");
    // Connections keep starting while nothing answers them.
    await sleep(300);
    traffic.write("stop\n");
    if (thawAfterMs !== null) {
      await sleep(thawAfterMs);
      process.kill(serverPid, "SIGCONT");
    }
    await traffic.waitForLine(/^finished$/, (churnTimeout + 30) * 1000);
  } finally {
    if (serverPid) {
      try {
        process.kill(serverPid, "SIGCONT");
      } catch {
        // Gone with the generator.
      }
    }
    await traffic.stop(2000);
  }
  const lines = fs.readFileSync(`${out}.soak-churn.ndjson`, "utf8").trim().split("\n").map((l) => JSON.parse(l));
  const summary = lines.find((l) => l.cls === "summary") as Required<ChurnSummary> | undefined;
  expect(summary, `no summary in ${out}.soak-churn.ndjson: ${traffic.stderr}`).toBeDefined();
  return summary!;
}

describe("soak traffic generator", { timeout: 120_000 }, () => {
  it("follows short connections in flight at stop to their answer: none failed, none cut off", async () => {
    const s = await stopWhileInFlight("drained", 20, 500);
    const why = JSON.stringify(s);
    expect(s.started, why).toBeGreaterThan(200);
    expect(s.failed, why).toBe(0);
    expect(s.stopped, why).toBe(0);
    expect(s.ok, why).toBe(s.started);
  });

  it("counts those still unanswered when the drain runs out as stopped, not as failed", async () => {
    const s = await stopWhileInFlight("stopped", 2, null);
    const why = JSON.stringify(s);
    // About 300 ms of connections at 300/s were waiting for the frozen server.
    expect(s.stopped, why).toBeGreaterThan(20);
    expect(s.failed, why).toBe(0);
    expect(s.ok + s.stopped, why).toBe(s.started);
  });
});
