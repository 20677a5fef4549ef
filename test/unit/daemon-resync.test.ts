/**
 * The daemon with the sensor running: every interval dumps what the sensor does not cover (UDP),
 * plus TCP when a loaded rule subscribes to counters events; a full dump every `resync` seconds;
 * a reload applies a new resync period and the new rules' need for counters. `sensor = "ebpf"`
 * where the engine has no sensor stops the start with exit 5. The engine is scripted (it records
 * what each snapshot asks for); rules run as they do in production, in their own processes.
 */
import { describe, expect, test } from "vitest";
import path from "node:path";
import { defaultConfig, type DaemonConfig } from "../../src/daemon/config.ts";
import type { SnapshotRequest, SocketEngine, TransitionFeed } from "../../src/engine/types.ts";
import { UnsupportedError } from "../../src/errors.ts";
import { ManualTimers } from "./helpers/manual-timers.ts";
import { daemonBed } from "../support/daemon-bed.ts";

/** Counts counters events: a rule that needs TCP dumped every interval. */
const COUNTING_RULE = `import { defineRule } from "sockwarden";
export default defineRule({ name: "traffic", on: ["counters"], handle() {} });
`;

class ScriptedEngine implements SocketEngine {
  readonly name = "scripted";
  readonly dumps: string[] = [];
  constructor(private readonly sensor: boolean) {}
  snapshot(request: SnapshotRequest) {
    this.dumps.push([...request.protocols].sort().join("+"));
    return { endpoints: [], takenAt: Date.now(), source: "scripted", notes: [], unreadableProcesses: 0 };
  }
  get transitions(): (() => TransitionFeed) | undefined {
    if (!this.sensor) return undefined;
    return () => ({ notes: [], drain: () => [], lost: () => 0, onReady: () => {}, close: () => {} });
  }
  close() {}
}

const bed = daemonBed("sw-daemon-resync-", { "traffic.ts": COUNTING_RULE });

function setup(configure: (c: DaemonConfig) => void, sensor = true) {
  const config = defaultConfig();
  config.rules.sources = ["smtp-guard"];
  configure(config);
  const engine = new ScriptedEngine(sensor);
  const timers = new ManualTimers();
  const daemon = bed.make(config, engine, timers);
  /** `seconds` of refreshes, each one's handling awaited before the next. */
  const run = async (seconds: number) => {
    for (let i = 0; i < seconds * 10; i++) {
      timers.advance(100);
      await daemon.idle();
    }
  };
  return { engine, daemon, run };
}

describe("the daemon's refreshes with the sensor running", () => {
  test("no rule wants counters: UDP every interval, everything every resync; a reload changes both", async () => {
    const { engine, daemon: d, run } = setup((c) => {
      c.interval = 1;
      c.resync = 5;
    });
    await d.start();
    await run(10);
    expect(engine.dumps).toEqual(["tcp+udp", "udp", "udp", "udp", "udp", "tcp+udp", "udp", "udp", "udp", "udp", "tcp+udp"]);
    // A rule that subscribes to counters events comes with a reload: TCP every interval from now on.
    const next = defaultConfig();
    next.interval = 1;
    next.resync = 60;
    next.rules.sources = ["smtp-guard", path.join(bed.dir, "traffic.ts")];
    await d.reload(next);
    engine.dumps.length = 0;
    await run(3);
    expect(engine.dumps).toEqual(["tcp+udp", "tcp+udp", "tcp+udp"]);
    // And without it again, UDP only: the resync due at 15 s stays, the next is a minute later.
    const back = defaultConfig();
    back.interval = 1;
    back.resync = 60;
    back.rules.sources = ["smtp-guard"];
    await d.reload(back);
    engine.dumps.length = 0;
    await run(4);
    expect(engine.dumps).toEqual(["udp", "tcp+udp", "udp", "udp"]);
  }, 60_000);

  test("a rule on counters from the start: TCP every interval", async () => {
    const { engine, daemon: d, run } = setup((c) => {
      c.interval = 1;
      c.rules.sources = [path.join(bed.dir, "traffic.ts")];
    });
    await d.start();
    await run(3);
    expect(engine.dumps).toEqual(["tcp+udp", "tcp+udp", "tcp+udp", "tcp+udp"]);
  }, 60_000);

  test("without a sensor, auto polls with a full dump every interval; ebpf refuses to start", async () => {
    const polled = setup((c) => {
      c.interval = 1;
      c.resync = 2;
    }, false);
    await polled.daemon.start();
    await polled.run(3);
    expect(polled.engine.dumps).toEqual(["tcp+udp", "tcp+udp", "tcp+udp", "tcp+udp"]);
    await polled.daemon.stop(200);

    const strict = setup((c) => {
      c.sensor = "ebpf";
    }, false);
    const refused = await strict.daemon.start().then(() => null, (err: unknown) => err);
    expect(refused).toBeInstanceOf(UnsupportedError);
    expect((refused as UnsupportedError).exitCode).toBe(5);
    expect((refused as Error).message).toBe("eBPF sensor unavailable: the scripted engine has no sensor of state changes; --sensor auto would poll instead");
    expect(strict.engine.dumps).toEqual([]);
  }, 60_000);
});
