/**
 * Running the compiled executable (dist/sockwarden) and reading its JSON output. The record
 * shape here is the documented JSON contract, written out independently of src/ so the tests
 * check what users get, not what the code happens to declare.
 */

import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Netns, RunOptions, RunResult } from "./netns.ts";
import { describeRun } from "./netns.ts";
import type { KernelState, Protocol } from "./ss.ts";

export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));
/**
 * The executable under test: dist/sockwarden, or the file named by SOCKWARDEN_E2E_EXECUTABLE
 * (an absolute path; e.g. to check an installed copy or a build kept elsewhere).
 */
export const EXECUTABLE =
  process.env.SOCKWARDEN_E2E_EXECUTABLE || fileURLToPath(new URL("../../../dist/sockwarden", import.meta.url));

export interface JsonProcess {
  pid: number;
  name: string;
  path: string | null;
  cmdline: string | null;
  uid: number | null;
  user: string | null;
  startTime: string | null;
  ppid: number | null;
}

export interface JsonEndpoint {
  protocol: Protocol;
  family: 4 | 6;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  state: KernelState | null;
  inode: number;
  uid: number | null;
  user: string | null;
  bytesSent: number | null;
  bytesReceived: number | null;
  packetsSent: number | null;
  packetsReceived: number | null;
  process: JsonProcess | null;
  pids: number[];
  interfaceIndex: number;
  receiveQueue: number | null;
  sendQueue: number | null;
  rttMs: number | null;
  cookie: string | null;
}

/** Fails with a clear message when the executable has not been built. */
export function requireExecutable(): void {
  if (!existsSync(EXECUTABLE)) {
    throw new Error(
      `${EXECUTABLE} does not exist: build it first with \`npm run build\` (npm test builds it before running the suite)` +
        (process.env.SOCKWARDEN_E2E_EXECUTABLE ? " or fix SOCKWARDEN_E2E_EXECUTABLE." : "."),
    );
  }
}

/** Runs dist/sockwarden (or `executable`) with `args` inside the namespace. */
export function runSockwarden(
  ns: Netns,
  args: string[],
  options: RunOptions & { executable?: string } = {},
): Promise<RunResult> {
  const { executable = EXECUTABLE, ...rest } = options;
  return ns.exec([executable, ...args], { timeoutMs: 30_000, ...rest });
}

/** Parses output that must be one JSON array. */
export function parseJsonArray(result: RunResult): JsonEndpoint[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(result.stdout);
  } catch (error) {
    throw new Error(`output is not JSON (${(error as Error).message}): ${describeRun(result)}`);
  }
  if (!Array.isArray(parsed)) throw new Error(`output is JSON but not an array: ${describeRun(result)}`);
  return parsed as JsonEndpoint[];
}

/** `sockwarden list <args> --json` in the namespace; must exit 0 and print one JSON array. */
export async function listJson(ns: Netns, args: string[], options: RunOptions = {}): Promise<JsonEndpoint[]> {
  const result = await runSockwarden(ns, ["list", ...args, "--json"], options);
  if (result.code !== 0) throw new Error(`sockwarden list failed: ${describeRun(result)}`);
  return parseJsonArray(result);
}
