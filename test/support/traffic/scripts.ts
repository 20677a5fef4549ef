/**
 * The traffic generator tests and benchmarks share, traffic.py MODE ... (its usage at the top of
 * the file), run with python3 inside a network namespace the caller made; traffic stays on its
 * loopback. The constants below are argv prefixes: `[PYTHON, ...LISTENER, name, host, port]`.
 */
import { fileURLToPath } from "node:url";

export const PYTHON = "/usr/bin/python3";
/**
 * The generator itself: traffic.py listen|connect|hold|churn|beacon|victim|soak ARGS...; the
 * benchmarks run hold, churn, beacon and victim by name (idle connections held, a steady stream of
 * short ones, bursts of 1-5 ms ones from a process that lives on, connections smtp-guard must
 * abort, timed).
 */
export const TRAFFIC = fileURLToPath(new URL("./traffic.py", import.meta.url));
/** A named listener serving every connection at once: ... NAME HOST PORT. */
export const LISTENER: readonly string[] = [TRAFFIC, "listen"];
/** Short connections under a chosen name: ... NAME HOST PORT COUNT BIND_HOST FIRST_PORT PATTERN [HOLD_MS | RATE [BALLAST]]. */
export const CONNECTIONS: readonly string[] = [TRAFFIC, "connect"];
/** The soak's mixed traffic: short connections, ones smtp-guard must close, look-alikes it must not: ... CONFIG_JSON. */
export const SOAK_TRAFFIC: readonly string[] = [TRAFFIC, "soak"];

/** One connection as `connect` reports it: the addresses it saw and how it ended. */
export interface ClientConnection {
  local: [string, number];
  remote: [string, number];
  mode: "normal" | "reset" | "peer" | "held";
}

/** What `connect` prints once its connections are made. */
export interface ClientRun {
  pid: number;
  connections: ClientConnection[];
}

/** The local ports of a run's connections, in the order they were made. */
export const localPorts = (run: ClientRun): number[] => run.connections.map((c) => c.local[1]);
