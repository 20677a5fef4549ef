/**
 * Starts helpers/scenario.py inside a namespace and reads back its description of the sockets it
 * opened (see the script's header for what they are and why each state is stable).
 */

import { fileURLToPath } from "node:url";
import type { BackgroundProcess, Netns } from "./netns.ts";
import type { KernelState, Protocol } from "./ss.ts";

export const SCENARIO_SCRIPT = fileURLToPath(new URL("./scenario.py", import.meta.url));
export const PYTHON = "/usr/bin/python3";

/** The kernel keeps TIME_WAIT entries for 60 s; leave a margin. */
const TIME_WAIT_BUDGET_MS = 50_000;
const READY_TIMEOUT_MS = 30_000;

export interface ScenarioSocket {
  /** Role in the scenario, e.g. "listen4", "timewait6", "synsent-client". */
  name: string;
  protocol: Protocol;
  family: 4 | 6;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  state: KernelState | null;
  /** Pids expected to hold the socket; empty for sockets no process owns. */
  pids: number[];
  /** Interface the socket is bound to (SO_BINDTODEVICE). */
  interface?: string;
  /** Bytes known to sit unread in the receive queue. */
  receiveQueue?: number;
  /** Payload bytes this end sent and received. */
  bytesSent?: number;
  bytesReceived?: number;
}

export interface ScenarioDescription {
  /** The scenario's main process (named "python3"). */
  pid: number;
  /** The peer process (renamed "swpeer"). */
  peerPid: number;
  /** A forked child of the main process sharing one listener with it. */
  childPid: number;
  maxLifetimeSeconds: number;
  sockets: ScenarioSocket[];
}

export class Scenario {
  constructor(
    readonly description: ScenarioDescription,
    readonly process: BackgroundProcess,
    /** Date.now() just before the script was started. */
    readonly startedAt: number,
  ) {}

  /** The described socket with this role; throws when there is none. */
  socket(name: string): ScenarioSocket {
    const found = this.description.sockets.find((s) => s.name === name);
    if (!found) throw new Error(`the scenario has no socket named ${name}`);
    return found;
  }

  /**
   * Throws unless the scenario's TIME_WAIT entries are certainly still there, so that a slow
   * run fails with this message rather than with a confusing difference.
   */
  assertTimeWaitAlive(): void {
    const age = Date.now() - this.startedAt;
    if (age > TIME_WAIT_BUDGET_MS) {
      throw new Error(
        `the scenario is ${Math.round(age / 1000)} s old; its TIME_WAIT entries (60 s in the kernel) ` +
          "may be gone, so this comparison would not be meaningful. The test file is too slow.",
      );
    }
  }

  async stop(): Promise<void> {
    await this.process.stop();
  }
}

/** Starts the scenario in `ns` and waits (bounded) until it reports ready. */
export async function startScenario(ns: Netns): Promise<Scenario> {
  const startedAt = Date.now();
  const child = ns.spawn([PYTHON, SCENARIO_SCRIPT]);
  try {
    const descriptionLine = await child.nextLine(READY_TIMEOUT_MS);
    const ready = await child.nextLine(READY_TIMEOUT_MS);
    if (ready !== "ready") throw new Error(`scenario printed ${JSON.stringify(ready)} instead of "ready"`);
    const description = JSON.parse(descriptionLine) as ScenarioDescription;
    return new Scenario(description, child, startedAt);
  } catch (error) {
    await child.stop();
    throw error;
  }
}
