/**
 * The daemon's outputs: the configured sinks behind one write. Kept separate from the sinks
 * themselves so the daemon does not care how many there are or what they do.
 */
import type { DaemonRecord } from "./daemon.ts";
import type { Metrics } from "./metrics.ts";
import { stdout } from "../cli/output.ts";
import { UsageError } from "../errors.ts";

export interface Outputs {
  write(records: DaemonRecord[]): void;
  /** Adds queue depth and drop counts to the metrics. */
  describe(metrics: Metrics): void;
  close(timeoutMs: number): Promise<void>;
}

export function createOutputs(specs: readonly string[], _warn: (m: string) => void): Outputs {
  const writers: ((r: DaemonRecord[]) => void)[] = [];
  for (const spec of specs) {
    if (spec === "stdout") writers.push((rs) => stdout(rs.map(human).join("")));
    else if (spec === "stdout:ndjson") writers.push((rs) => stdout(rs.map((r) => JSON.stringify(r) + "\n").join("")));
    else throw new UsageError(`unknown sink '${spec}': use stdout or stdout:ndjson`);
  }
  return {
    write(records) {
      for (const w of writers) {
        try {
          w(records);
        } catch {
          // A sink that fails never stops the daemon or the other sinks.
        }
      }
    },
    describe() {},
    async close() {},
  };
}

function human(r: DaemonRecord): string {
  const who = r.rule ? ` [${r.rule}]` : "";
  const sev = r.severity && r.kind === "alert" ? ` ${r.severity.toUpperCase()}` : "";
  return `${r.time} ${r.kind}${sev}${who} ${r.message}\n`;
}
