/**
 * `sockwarden proc PID`: the properties the live view's panel shows for one process (path,
 * command line, user, start time, parent, cgroup and systemd unit, ...) and every endpoint it
 * holds, in any state.
 */
import type { Argv } from "yargs";
import { createEngine } from "../engine/index.ts";
import type { Endpoint } from "../model/endpoint.ts";
import type { ProcessDetails } from "../model/process.ts";
import { compareEndpoints } from "../model/endpoint-order.ts";
import { endpointToJson } from "../format/endpoint-json.ts";
import { renderEndpointTable } from "../view/endpoint-table.ts";
import { friendlyNames, numericNames } from "../view/endpoint-names.ts";
import { processDetailsToJson, renderProcessProperties } from "../view/process-properties.ts";
import { resolveHostNames } from "./host-names.ts";
import { stderr, stdout } from "./output.ts";
import { escapeControl } from "../text/escape-control.ts";
import { NotFoundError, PrivilegeError, UnsupportedError, UsageError } from "../errors.ts";
import { userNamespaceNote } from "../engine/linux/capabilities.ts";

export interface ProcArgs {
  pid: string;
  numeric?: boolean;
  json?: boolean;
  quiet?: boolean;
}

export function procBuilder<T>(y: Argv<T>) {
  return y
    .positional("pid", { type: "string", demandOption: true, describe: "Process ID" })
    .option("numeric", { alias: "n", type: "boolean", describe: "Numeric addresses and ports (no names, no DNS)" })
    .option("json", { type: "boolean", describe: "One JSON object: process, endpoints" })
    .option("quiet", { alias: "q", type: "boolean", describe: "No notes on stderr" });
}

/** Linux never hands out PIDs above 2^22 (PID_MAX_LIMIT); anything beyond is a typo. */
const PID_LIMIT = 4_194_304;

export function parsePid(text: string): number {
  const trimmed = text.trim();
  const pid = /^[0-9]+$/.test(trimmed) ? Number(trimmed) : NaN;
  if (!(pid >= 1 && pid <= PID_LIMIT)) {
    throw new UsageError(`invalid PID "${text}": expected a process ID, a number from 1 to ${PID_LIMIT}`);
  }
  return pid;
}

export async function runProc(args: ProcArgs): Promise<number> {
  const pid = parsePid(String(args.pid));
  const engine = createEngine();
  let details: ProcessDetails | null;
  let ownNetns: number | null = null;
  let snapshot;
  try {
    if (!engine.processDetails) throw new UnsupportedError(`process details are not available on ${engine.name} yet`);
    details = engine.processDetails(pid);
    if (details === null) throw new NotFoundError(`no process with PID ${pid}`);
    ownNetns = engine.processDetails(process.pid)?.netns ?? null;
    snapshot = engine.snapshot({ protocols: new Set(["tcp", "udp"]), families: new Set([4, 6]), withProcesses: true });
  } finally {
    engine.close();
  }
  // Every socket the process holds, including ones it shares with others after a fork.
  const endpoints: Endpoint[] = snapshot.endpoints.filter((ep) => ep.pids.includes(pid)).sort(compareEndpoints);
  // Another user's process whose descriptors cannot be read: its endpoints are unknown, not none.
  const hidden = engine.name === "linux" && details.fdCount === null ? hiddenEndpointsError(details) : null;
  if (!args.quiet && !hidden) {
    for (const note of snapshot.notes) stderr(`note: ${escapeControl(note)}\n`);
    if (details.netns !== null && ownNetns !== null && details.netns !== ownNetns) {
      stderr(
        `note: process ${pid} is in another network namespace; its sockets there are not listed ` +
          `(run inside it: nsenter -t ${pid} -n sockwarden proc ${pid})\n`,
      );
    }
  }

  if (args.json) {
    const doc = { process: processDetailsToJson(details), endpoints: endpoints.map(endpointToJson) };
    stdout(JSON.stringify(doc, null, 2) + "\n");
    if (hidden) throw hidden;
    return 0;
  }
  const width = process.stdout.isTTY ? process.stdout.columns || 80 : undefined;
  let text = renderProcessProperties(details, { width, now: Date.now() }).join("\n") + "\n\n";
  if (hidden) text += "Endpoints: unknown (its open files cannot be read)\n";
  else if (endpoints.length === 0) text += "No TCP or UDP endpoints.\n";
  else {
    const names = args.numeric ? numericNames() : friendlyNames(await resolveHostNames(endpoints, 1000));
    text += `Endpoints (${endpoints.length}):\n`;
    text += renderEndpointTable(endpoints, { extended: false, names, width });
  }
  stdout(text);
  if (hidden) throw hidden;
  return 0;
}

function hiddenEndpointsError(details: ProcessDetails): PrivilegeError {
  const who = details.uid !== null ? `uid ${details.uid}` : "another user";
  return new PrivilegeError(
    `the endpoints and path of process ${details.pid} (${who}) cannot be read: reading another user's /proc/PID/fd ` +
      `needs CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH (root has both)${userNamespaceNote()}`,
  );
}
