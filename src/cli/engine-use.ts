/**
 * How the commands use the engine: opened for one look and closed after it whatever happens, or
 * under a monitor for the commands that keep watching (`watch`, `live`).
 */
import type { EngineOptions, Platform, SnapshotRequest, SocketEngine } from "../engine/index.ts";
import type { Selection } from "../filter/endpoint-filter.ts";
import { Monitor } from "../monitor/monitor.ts";
import { DEFAULT_SENSOR, requiresSensor, wantsTransitions, type SensorChoice } from "../monitor/sensor-choice.ts";

/** `--source` as yargs checked it against its choices. */
export type SourceChoice = "auto" | "netlink" | "proc";

export function sourceChoice(source: string | undefined): SourceChoice | undefined {
  return source as SourceChoice | undefined;
}

/** Every TCP and UDP endpoint of both families, with its processes. */
export function everyEndpoint(): SnapshotRequest {
  return { protocols: new Set(["tcp", "udp"]), families: new Set([4, 6]), withProcesses: true };
}

/** Runs `use` on an engine opened for it, closed after it whatever happens. */
export function withEngine<T>(platform: Platform, options: EngineOptions, use: (engine: SocketEngine) => T): T {
  const engine = platform.createEngine(options);
  try {
    return use(engine);
  } finally {
    engine.close();
  }
}

export interface WatchSource {
  source?: string;
  allNamespaces?: boolean;
  sensor?: string;
}

/** The engine and its monitor for a command that keeps watching the endpoints `selection` takes. */
export function openMonitor(platform: Platform, args: WatchSource, selection: Selection, counters: boolean): { engine: SocketEngine; monitor: Monitor } {
  const sensor = (args.sensor ?? DEFAULT_SENSOR) as SensorChoice;
  const engine = platform.createEngine({ source: sourceChoice(args.source), allNamespaces: !!args.allNamespaces });
  const monitor = new Monitor({
    engine,
    request: { protocols: selection.protocols, families: selection.families, withProcesses: true },
    transitions: wantsTransitions(sensor),
    requireSensor: requiresSensor(sensor),
    counters,
  });
  return { engine, monitor };
}
