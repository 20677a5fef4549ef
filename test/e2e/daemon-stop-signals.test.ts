/**
 * `sockwarden run` stops in order on SIGTERM or SIGINT whenever one comes once the command has
 * begun: while the sinks open and the rules load, once it runs, twice, and while it stops with
 * more signals (SIGHUP among them) arriving. Never by a signal's default action: the records a
 * webhook could not deliver are kept in the spool, and the exit status is 0.
 *
 * A signal whose last listener is removed gets its default action back (ending the process), so
 * at every point tried here the process must have SIGHUP, SIGINT and SIGTERM caught; the kernel's
 * own account (SigCgt in /proc/PID/status) is checked as well as the exit.
 *
 * Needs root (network namespace) and a built dist/sockwarden.
 */
import { beforeAll, describe, expect, it } from "vitest";
import fs from "node:fs";
import path from "node:path";
import type { BackgroundProcess } from "./helpers/netns.ts";
import { EXECUTABLE } from "./helpers/sockwarden.ts";
import { daemonTestbed } from "./helpers/daemon.ts";
import { waitFor } from "./helpers/wait-for.ts";

/** How many times each point is tried: the windows are short, so one try proves little. */
const TRIES = 3;
/** Nothing listens here: every alert waits in the spool. */
const SINK = "webhook:http://127.0.0.1:7981/hook#backoffMs=100&maxBackoffMs=300";
const SIGNAL_BITS = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;
type StopSignal = "SIGTERM" | "SIGINT";

const bed = daemonTestbed("sig", "sw-stop-signals-");

beforeAll(() => {
  // One alert at every start, so each start has something to keep.
  fs.writeFileSync(path.join(bed.dir, "hello.ts"), `import { defineRule } from "sockwarden";
export default defineRule({ name: "hello", start(_endpoints, act) { act.alert("started", "warning"); } });
`);
});

/** Starts the daemon without waiting for it: the points tried here come before it runs. */
function spawnDaemon(state: string): BackgroundProcess {
  const d = bed.ns.spawn([
    EXECUTABLE, "run", "--interval", "0.3", "--rule", path.join(bed.dir, "hello.ts"),
    "--audit-log", path.join(bed.dir, "audit.log"), "--state-dir", path.join(bed.dir, state), "--sink", SINK,
  ]);
  bed.running.push(d);
  return d;
}

/**
 * The signals among SIGHUP, SIGINT and SIGTERM the process catches now, as the kernel says; all
 * three once it has exited and waits to be reaped (no signal can end it then).
 */
function caught(pid: number): string[] {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  if (/^State:\s*Z/m.test(status)) return Object.keys(SIGNAL_BITS);
  const mask = BigInt(`0x${/^SigCgt:\s*([0-9a-f]+)$/m.exec(status)![1]}`);
  return Object.entries(SIGNAL_BITS)
    .filter(([, n]) => (mask >> BigInt(n - 1)) & 1n)
    .map(([name]) => name);
}

/**
 * Calls `act` at once, in the same turn as the stderr chunk, when a line matching `re` arrives;
 * settles without calling it when the process ends first (the caller's checks then fail).
 */
function onStderr(d: BackgroundProcess, re: RegExp, act: () => void): Promise<void> {
  return new Promise((resolve) => {
    let seen = "";
    const listener = (chunk: string) => {
      seen += chunk;
      if (!re.test(seen)) return;
      d.child.stderr!.off("data", listener);
      act();
      resolve();
    };
    d.child.stderr!.on("data", listener);
    d.child.once("close", () => resolve());
  });
}

async function expectCleanStop(d: BackgroundProcess): Promise<void> {
  expect(await d.waitForExit(15_000), d.stderr).toBe(true);
  expect({ code: d.child.exitCode, signal: d.child.signalCode }, d.stderr).toEqual({ code: 0, signal: null });
}

/** The records the spool holds, as the daemon told it at the stop. */
function keptAtStop(d: BackgroundProcess): number {
  const m = /: (\d+) record\(s\) not delivered before closing: kept in \S+spool\//.exec(d.stderr);
  expect(m, d.stderr).not.toBeNull();
  return Number(m![1]);
}

/** A first start and stop, so that later starts open a spool with records in it. */
async function seed(state: string): Promise<number> {
  const d = spawnDaemon(state);
  await waitFor(() => `the daemon to start; stderr:\n${d.stderr}`, () => (/running /.test(d.stderr) || d.hasExited ? true : undefined), 30_000);
  process.kill(d.pid, "SIGTERM");
  await expectCleanStop(d);
  return keptAtStop(d);
}

describe("sockwarden run: SIGTERM and SIGINT stop it in order at any point", { timeout: 240_000 }, () => {
  for (const signal of ["SIGTERM", "SIGINT"] as StopSignal[]) {
    it(`${signal} while the sinks open and the rules load: signals already caught, exit 0, the spool kept`, async () => {
      const state = `state-starting-${signal}`;
      let kept = await seed(state);
      for (let i = 0; i < TRIES; i++) {
        const d = spawnDaemon(state);
        let atFirstNote: string[] = [];
        // Told when the sink opens its spool, before the rules load and long before "running".
        await onStderr(d, /record\(s\) kept in \S+ from before go out first/, () => {
          atFirstNote = caught(d.pid);
          process.kill(d.pid, signal);
        });
        await expectCleanStop(d);
        expect(atFirstNote, d.stderr).toEqual(["SIGHUP", "SIGINT", "SIGTERM"]);
        const now = keptAtStop(d);
        expect(now, d.stderr).toBeGreaterThanOrEqual(kept);
        kept = now;
      }
    });
  }

  it("SIGTERM the moment the process has taken it over (the earliest it can be honoured): exit 0", async () => {
    for (let i = 0; i < TRIES; i++) {
      const d = spawnDaemon("state-earliest");
      // Read as fast as the kernel can tell: the window before the start is done is what counts.
      await waitFor(() => `SIGTERM to be caught; stderr:\n${d.stderr}`, () => {
        if (d.hasExited) return true;
        for (let spin = 0; spin < 500; spin++) {
          try {
            if (caught(d.pid).includes("SIGTERM")) return true;
          } catch {
            return undefined;
          }
        }
        return undefined;
      }, 30_000);
      process.kill(d.pid, "SIGTERM");
      await expectCleanStop(d);
    }
  });

  it("SIGTERM once it runs, and a second SIGTERM straight after: exit 0", async () => {
    for (const twice of [false, true]) {
      for (let i = 0; i < TRIES; i++) {
        const d = spawnDaemon("state-running");
        await onStderr(d, /running /, () => {
          process.kill(d.pid, "SIGTERM");
          if (twice) process.kill(d.pid, "SIGTERM");
        });
        await expectCleanStop(d);
      }
    }
  });

  it("SIGHUP, SIGINT and SIGTERM keep coming while it stops: they stay caught to the end, exit 0", async () => {
    for (let i = 0; i < TRIES; i++) {
      const d = spawnDaemon("state-stopping");
      await waitFor(() => `the daemon to start; stderr:\n${d.stderr}`, () => (/running /.test(d.stderr) || d.hasExited ? true : undefined), 30_000);
      process.kill(d.pid, "SIGTERM");
      const order = ["SIGHUP", "SIGINT", "SIGTERM"] as const;
      let sent = 0;
      const notCaught = new Set<string>();
      // Bounded: the stop takes at most two seconds; this sends for at most about ten.
      const storm = setInterval(() => {
        if (d.hasExited || d.child.exitCode !== null || d.child.signalCode !== null || sent > 5000) return;
        try {
          for (const s of order) if (!caught(d.pid).includes(s)) notCaught.add(s);
          process.kill(d.pid, order[sent++ % order.length]);
        } catch {
          // Gone between the check and the signal.
        }
      }, 2);
      try {
        await expectCleanStop(d);
      } finally {
        clearInterval(storm);
      }
      expect([...notCaught], d.stderr).toEqual([]);
      expect(sent, "signals sent while it stopped").toBeGreaterThan(0);
    }
  });
});
