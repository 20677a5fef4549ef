/**
 * The kernel's verifier gives up with EAGAIN whenever a signal is pending on the loading thread,
 * and a CPU profiler's timer signals the thread about a thousand times a second, more often than
 * the sensor's whole program (with its socket reads) takes to verify. An interrupted load is not
 * a refusal: the sensor must still run, with the short program if it must, and say why in those
 * words. Before, it took five interruptions for a refusal: it asked for the full log (slower to
 * verify, so interrupted again) and then said the kernel "refused" the reads, or lost the sensor.
 * (Holding signals back during the load was tried: it deadlocked under the profiler, which waits
 * for the thread to take its signal.)
 *
 * Needs root (bpf, a network namespace) and a built dist/sockwarden.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Netns, describeRun, requireRoot } from "./helpers/netns.ts";
import { EXECUTABLE, requireExecutable } from "./helpers/sockwarden.ts";

const STARTS = 6;

let ns: Netns | undefined;
let profiles = "";

beforeAll(async () => {
  requireRoot("The sensor's start under a profiler");
  requireExecutable();
  ns = await Netns.create("sigs");
  profiles = mkdtempSync(path.join(tmpdir(), "sw-prof-"));
});

afterAll(async () => {
  await ns?.dispose();
  if (profiles) rmSync(profiles, { recursive: true, force: true });
});

describe("the eBPF sensor started under a CPU profiler's timer", { timeout: 180_000 }, () => {
  it(`runs in each of ${STARTS} starts, and says "interrupted", never "refused"`, async () => {
    const wrong: string[] = [];
    for (let i = 0; i < STARTS; i++) {
      const r = await ns!.exec([EXECUTABLE, "watch", "--sensor", "ebpf", "--ndjson", "--duration", "0.5"], {
        timeoutMs: 60_000,
        env: { ...process.env, BUN_OPTIONS: `--cpu-prof --cpu-prof-dir=${profiles}` },
      });
      expect(r.code, describeRun(r)).toBe(0);
      const lines = r.stderr.split("\n");
      const misread = lines.filter((l) => /refused|unavailable/.test(l));
      if (misread.length > 0) wrong.push(`start ${i + 1}: ${misread.join(" | ").slice(0, 300)}`);
      // Where the reads were dropped, the note gives the real reason.
      for (const l of lines.filter((l) => /carry no/.test(l))) {
        if (!/interrupted by signals/.test(l)) wrong.push(`start ${i + 1}: ${l.slice(0, 300)}`);
      }
    }
    expect(wrong).toEqual([]);
  });
});
