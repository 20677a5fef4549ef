/**
 * Where the eBPF sensor cannot run for want of capabilities, `watch --sensor auto` says why in
 * one note on stderr and reports changes by polling as before. Root's capabilities are taken away
 * with capsh (--drop removes them from the bounding set, so the executable started through it
 * has none of them): CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN all, and CAP_PERFMON and
 * CAP_SYS_ADMIN alone (CAP_BPF without CAP_PERFMON is not enough either). Everything else a root
 * watcher has stays, so nothing but the sensor is affected.
 *
 * An explicit `--sensor ebpf` in the same setting is an error instead: one line saying why, exit
 * 5 (unsupported), for `watch` and `run` alike.
 *
 * Needs root (network namespaces, capsh) and a built dist/sockwarden.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BackgroundProcess, Netns, describeRun, requireRoot } from "./helpers/netns.ts";
import { EXECUTABLE, requireExecutable } from "./helpers/sockwarden.ts";
import { type WatchEvent, finishWatch, readEventsUntil, sentinel, sentinelSeen } from "./helpers/sensor-watch.ts";

const HOST = "127.0.0.1";
const NOTE = /^note: eBPF sensor unavailable: this process lacks the capabilities: it needs CAP_BPF and CAP_PERFMON \(Linux 5\.8\+\) or CAP_SYS_ADMIN; polling every refresh instead$/;

let ns: Netns | undefined;

beforeAll(async () => {
  requireRoot("The sensor's fallback test");
  requireExecutable();
  ns = await Netns.create("fallback");
});

afterAll(async () => {
  await ns?.dispose();
});

/** argv running sockwarden with `drop` (comma-separated capability names) out of reach. */
const without = (drop: string, args: string[]) => ["capsh", `--drop=${drop}`, "--", "-c", 'exec "$@"', "sockwarden", EXECUTABLE, ...args];

const sensorLines = (stderr: string) => stderr.split("\n").filter((l) => /eBPF|sensor/i.test(l));

/** Waits (bounded) until the process has written a line matching `pattern` to stderr. */
async function stderrLine(p: BackgroundProcess, pattern: RegExp, timeoutMs = 20_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!p.stderr.split("\n").some((l) => pattern.test(l))) {
    if (p.hasExited || performance.now() > deadline) throw new Error(`no line matching ${pattern} on stderr of ${p.argv.join(" ")}:\n${p.stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("the eBPF sensor without its capabilities", { timeout: 120_000 }, () => {
  it.each([
    { drop: "cap_bpf,cap_perfmon,cap_sys_admin", port: 7950 },
    { drop: "cap_perfmon,cap_sys_admin", port: 7960 },
  ])("--sensor auto without $drop: one note, and polling reports a new connection", async ({ drop, port }) => {
    const watcher = ns!.spawn(without(drop, ["watch", "--sensor", "auto", "--ndjson", "-t", "--interval", "0.5", "--duration", "100"]));
    const events: WatchEvent[] = [];
    let held: BackgroundProcess | undefined;
    try {
      // The note comes once the first look is taken: changes after it are reported.
      await stderrLine(watcher, /eBPF sensor/);
      const s = await sentinel(ns!, HOST, port);
      held = s.process;
      await readEventsUntil(watcher, events, sentinelSeen(s.clientPort));
      await finishWatch(watcher, events);
      const notes = sensorLines(watcher.stderr);
      expect(notes, watcher.stderr).toHaveLength(1);
      expect(notes[0]).toMatch(NOTE);
      const mine = events.filter((e) => e.type === "opened" && e.localPort === s.clientPort && e.remotePort === port);
      expect(mine).toHaveLength(1);
      expect(mine[0]!.process?.name).toBe("python3");
    } finally {
      await watcher.stop();
      await held?.stop();
    }
  });

  it("--sensor auto with CAP_BPF and CAP_PERFMON but not CAP_SYS_ADMIN: runs where tracefs is mounted, else one note saying why", async () => {
    // Only tracefs needs CAP_SYS_ADMIN, to be mounted when it is not (`ip netns exec` mounts a
    // fresh /sys, without it, unless something mounts it there).
    const mounts = await ns!.exec(["cat", "/proc/self/mountinfo"], { timeoutMs: 5_000 });
    const tracefs = / - tracefs /.test(mounts.stdout);
    const watcher = ns!.spawn(without("cap_sys_admin", ["watch", "--sensor", "auto", "--ndjson", "--initial", "-t", "--interval", "0.5", "--duration", "100"]));
    const events: WatchEvent[] = [];
    let held: BackgroundProcess | undefined;
    try {
      // A held connection from before: --initial reports it once the first look is taken.
      const s = await sentinel(ns!, HOST, 7970);
      held = s.process;
      await readEventsUntil(watcher, events, sentinelSeen(s.clientPort));
      await finishWatch(watcher, events);
      const notes = sensorLines(watcher.stderr);
      if (tracefs) {
        expect(notes, watcher.stderr).toEqual([]);
      } else {
        expect(notes, watcher.stderr).toEqual([
          "note: eBPF sensor unavailable: tracefs is not mounted and mounting it on /sys/kernel/tracing failed: EPERM (mounting needs CAP_SYS_ADMIN); polling every refresh instead",
        ]);
      }
    } finally {
      await watcher.stop();
      await held?.stop();
    }
  });

  it.each([
    { command: "watch", args: ["watch", "--sensor", "ebpf", "--ndjson", "--duration", "30"] },
    { command: "run", args: ["run", "--rule", "smtp-guard", "--sensor", "ebpf"] },
  ])("$command --sensor ebpf without them: one line saying why, exit 5", async ({ args }) => {
    const r = await ns!.exec(without("cap_bpf,cap_perfmon,cap_sys_admin", args), { timeoutMs: 30_000 });
    expect(r.code, describeRun(r)).toBe(5);
    expect(r.stdout).toBe("");
    expect(r.stderr.trimEnd().split("\n"), r.stderr).toEqual([
      "sockwarden: eBPF sensor unavailable: this process lacks the capabilities: it needs CAP_BPF and CAP_PERFMON (Linux 5.8+) or CAP_SYS_ADMIN; --sensor auto would poll instead",
    ]);
  });
});
