/**
 * `sockwarden proc PID`: the properties the live view's panel shows for one process (path,
 * command line, user, start time, parent, cgroup and systemd unit, ...) and every endpoint it
 * holds, in any state.
 */
import type { Argv } from "yargs";
import type { Platform } from "../engine/index.ts";
import type { Endpoint } from "../model/endpoint.ts";
import type { ProcessDetails } from "../model/process.ts";
import { compareEndpoints } from "../model/endpoint-order.ts";
import { endpointToJson } from "../format/endpoint-json.ts";
import { renderEndpointTable } from "../view/endpoint-table.ts";
import { friendlyNames, numericNames } from "../view/endpoint-names.ts";
import { processDetailsToJson, renderProcessProperties } from "../view/process-properties.ts";
import { resolveHostNames } from "./host-names.ts";
import { notes, stderr, stdout, tableWidth } from "./output.ts";
import { everyEndpoint, withEngine } from "./engine-use.ts";
import { reportOptions, type ReportArgs } from "./report-options.ts";
import { NotFoundError, PrivilegeError, UnsupportedError, UsageError } from "../errors.ts";

export interface ProcArgs extends ReportArgs {
  pid: string;
  numeric?: boolean;
}

export function procBuilder<T>(y: Argv<T>) {
  const proc = y
    .positional("pid", { type: "string", demandOption: true, describe: "Process ID" })
    .option("numeric", { alias: "n", type: "boolean", describe: "Numeric addresses and ports (no names, no DNS)" });
  return reportOptions(proc, "One JSON object: process, endpoints");
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

export async function runProc(args: ProcArgs, platform: Platform): Promise<number> {
  const pid = parsePid(String(args.pid));
  const { details, ownNetns, snapshot } = withEngine(platform, {}, (engine) => {
    if (!engine.processDetails) throw new UnsupportedError(`process details are not available on ${engine.name} yet`);
    const details = engine.processDetails(pid);
    if (details === null) throw new NotFoundError(`no process with PID ${pid}`);
    return { details, ownNetns: engine.processDetails(process.pid)?.netns ?? null, snapshot: engine.snapshot(everyEndpoint()) };
  });
  // Every socket the process holds, including ones it shares with others after a fork.
  const endpoints: Endpoint[] = snapshot.endpoints.filter((ep) => ep.pids.includes(pid)).sort(compareEndpoints);
  // Another user's process whose descriptors cannot be read: its endpoints are unknown, not none.
  const unreadable = details.fdCount === null ? platform.unreadableFilesReason() : null;
  const hidden = unreadable !== null ? hiddenEndpointsError(details, unreadable) : null;
  if (!args.quiet && !hidden) {
    notes(snapshot.notes);
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
  const width = tableWidth();
  let text = renderProcessProperties(details, { width, now: Date.now() }).join("\n") + "\n\n";
  if (hidden) text += "Endpoints: unknown (its open files cannot be read)\n";
  else if (endpoints.length === 0) text += "No TCP or UDP endpoints.\n";
  else {
    const names = args.numeric ? numericNames() : friendlyNames(await resolveHostNames(endpoints, 1000, platform.places.hosts()));
    text += `Endpoints (${endpoints.length}):\n`;
    text += renderEndpointTable(endpoints, { extended: false, names, width });
  }
  stdout(text);
  if (hidden) throw hidden;
  return 0;
}

function hiddenEndpointsError(details: ProcessDetails, why: string): PrivilegeError {
  const who = details.uid !== null ? `uid ${details.uid}` : "another user";
  return new PrivilegeError(`the endpoints and path of process ${details.pid} (${who}) cannot be read: ${why}`);
}
