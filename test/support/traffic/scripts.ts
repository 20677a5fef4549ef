/**
 * The traffic generators tests and benchmarks share, run with python3 inside a network namespace
 * the caller made; traffic stays on its loopback.
 */
import { fileURLToPath } from "node:url";

export const PYTHON = "/usr/bin/python3";
/** A named listener serving every connection at once: listener.py NAME HOST PORT. */
export const LISTENER = fileURLToPath(new URL("./listener.py", import.meta.url));
/** Short connections under a chosen name: connections.py NAME HOST PORT COUNT BIND_HOST FIRST_PORT PATTERN [HOLD_MS | RATE [BALLAST]]. */
export const CONNECTIONS = fileURLToPath(new URL("./connections.py", import.meta.url));
/** The soak's mixed traffic: short connections, ones smtp-guard must close, look-alikes it must not. */
export const SOAK_TRAFFIC = fileURLToPath(new URL("./soak-traffic.py", import.meta.url));

/** One connection as connections.py reports it: the addresses it saw and how it ended. */
export interface ClientConnection {
  local: [string, number];
  remote: [string, number];
  mode: "normal" | "reset" | "peer" | "held";
}

/** What connections.py prints once its connections are made. */
export interface ClientRun {
  pid: number;
  connections: ClientConnection[];
}

/** The local ports of a run's connections, in the order they were made. */
export const localPorts = (run: ClientRun): number[] => run.connections.map((c) => c.local[1]);

/**
 * The benchmarks' loopback traffic, one mode a run: loopback-traffic.py hold|churn|beacon|victim
 * [--flag VALUE ...] (idle connections held, a steady stream of short ones, bursts of 1-5 ms
 * ones from a process that lives on, connections smtp-guard must abort, timed).
 */
export const LOOPBACK_TRAFFIC = fileURLToPath(new URL("./loopback-traffic.py", import.meta.url));
