/**
 * The working folder of an in-process daemon in a unit test: made before each test with the rule
 * files given, and after it the test's daemon stopped (within 200 ms: such daemons write to no real
 * outputs) and the folder removed.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach } from "vitest";
import { Daemon } from "../../src/daemon/daemon.ts";
import type { DaemonConfig } from "../../src/daemon/config.ts";
import type { SocketEngine } from "../../src/engine/types.ts";
import { AuditLog } from "../../src/actions/audit-log.ts";
import type { ManualTimers } from "../unit/helpers/manual-timers.ts";

export interface DaemonBed {
  /** This test's folder. */
  dir: string;
  /** The daemon the test made, stopped after it. */
  daemon: Daemon | null;
  /**
   * A daemon over `engine` on fake time, quiet (no outputs, no file watching), auditing into this
   * folder; the one stopped after the test.
   */
  make(config: DaemonConfig, engine: SocketEngine, timers: ManualTimers): Daemon;
}

export function daemonBed(prefix: string, files: Readonly<Record<string, string>>): DaemonBed {
  const bed: DaemonBed = {
    dir: "",
    daemon: null,
    make: (config, engine, timers) =>
      (bed.daemon = new Daemon({
        config,
        createEngine: () => engine,
        emit: () => {},
        audit: new AuditLog(path.join(bed.dir, "audit.log"), () => {}),
        warn: () => {},
        watchRuleFiles: false,
        timers,
        clock: timers.clock,
      })),
  };
  beforeEach(() => {
    bed.dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(bed.dir, name), text);
  });
  afterEach(async () => {
    await bed.daemon?.stop(200);
    bed.daemon = null;
    fs.rmSync(bed.dir, { recursive: true, force: true });
  });
  return bed;
}
