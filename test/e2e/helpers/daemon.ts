/**
 * What the tests of `sockwarden run` share: a private network namespace and a temporary
 * directory for the file, the processes each test starts (stopped after it), and the daemon
 * itself, started in the namespace and ready once it says what it runs.
 *
 * Needs root (network namespace) and a built dist/sockwarden.
 */
import { afterAll, afterEach, beforeAll, expect } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { type BackgroundProcess, Netns, requireRoot } from "./netns.ts";
import { EXECUTABLE, requireExecutable } from "./sockwarden.ts";
import { waitFor } from "./wait-for.ts";

export interface DaemonTestbed {
  /** Made before the file's first test. */
  readonly ns: Netns;
  /** A temporary directory, removed after the file's last test. */
  readonly dir: string;
  /** Processes the current test started; each is stopped after it. */
  readonly running: BackgroundProcess[];
  /**
   * Starts `sockwarden run ARGS` in the namespace and returns once its stderr says it runs (an
   * assertion fails if it exited or did not say so within `timeoutMs`).
   */
  startDaemon(args: readonly string[], timeoutMs?: number): Promise<BackgroundProcess>;
}

/**
 * Registers the calling test file's hooks; `label` names its namespace and `tempPrefix` its
 * temporary directory. The file's own beforeAll hooks, registered after this call, find both made.
 */
export function daemonTestbed(label: string, tempPrefix: string): DaemonTestbed {
  let ns: Netns | undefined;
  let dir: string | undefined;
  const running: BackgroundProcess[] = [];

  beforeAll(async () => {
    requireRoot();
    requireExecutable();
    ns = await Netns.create(label);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), tempPrefix));
  });

  afterEach(async () => {
    // SIGTERM first, as a service manager stops the daemon: it does not read stdin, so closing
    // that (stop's first step) would only wait out stop's grace period.
    for (const p of running.splice(0)) {
      await p.terminate(5000);
      await p.stop();
    }
  });

  afterAll(async () => {
    await ns?.dispose();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const bed: DaemonTestbed = {
    get ns() {
      if (!ns) throw new Error("the namespace is made in beforeAll; it is not there yet");
      return ns;
    },
    get dir() {
      if (!dir) throw new Error("the temporary directory is made in beforeAll; it is not there yet");
      return dir;
    },
    running,
    async startDaemon(args, timeoutMs = 30_000) {
      const d = bed.ns.spawn([EXECUTABLE, "run", ...args]);
      running.push(d);
      // The whole line: a pipe can hand it over in two pieces.
      await waitFor(() => `the daemon to start; stderr:\n${d.stderr}`, () => (/running [^\n]*\n/.test(d.stderr) || d.hasExited ? true : undefined), timeoutMs);
      expect(d.stderr, "daemon start").toMatch(/running /);
      return d;
    },
  };
  return bed;
}

/** Stops the daemon as a service manager does (SIGTERM) and expects a clean exit. */
export async function stopDaemon(d: BackgroundProcess): Promise<void> {
  process.kill(d.pid, "SIGTERM");
  expect(await d.waitForExit(10_000), d.stderr).toBe(true);
  expect({ code: d.child.exitCode, signal: d.child.signalCode }, d.stderr).toEqual({ code: 0, signal: null });
}
