/**
 * `sockwarden list`: one snapshot of endpoints, filtered and printed as a table, CSV, JSON or
 * NDJSON. Modelled on Tcpvcon and netstat.
 */
import type { Argv } from "yargs";
import type { Platform } from "../engine/index.ts";
import type { Endpoint } from "../model/endpoint.ts";
import { buildSelection, type SelectionOptions } from "../filter/endpoint-filter.ts";
import { compareEndpoints } from "../model/endpoint-order.ts";
import { jsonArrayChunks, ndjsonChunks } from "../format/endpoint-json.ts";
import { renderCsv } from "../view/endpoint-csv.ts";
import { renderEndpointTable } from "../view/endpoint-table.ts";
import { friendlyNames, numericNames } from "../view/endpoint-names.ts";
import { resolveHostNames } from "./host-names.ts";
import { BufferedOutput, notes, stdout, tableWidth } from "./output.ts";
import { sourceChoice, withEngine } from "./engine-use.ts";
import { checkReadableFile, checkWritableFile } from "./user-files.ts";
import { UsageError } from "../errors.ts";
import { trace } from "../trace.ts";
import { numberOption, parseNumberOption } from "./number-option.ts";
import { takeProcessAfterDashes } from "./words-after-dashes.ts";
import { inNamespaceNamed, otherNamespaceNote } from "./namespace-note.ts";

const DNS_BUDGET = { integer: true, min: 0, max: 60_000, unit: "milliseconds" };

export interface ListArgs extends SelectionOptions {
  allNamespaces?: boolean;
  numeric?: boolean;
  extended?: boolean;
  csv?: boolean;
  json?: boolean;
  ndjson?: boolean;
  quiet?: boolean;
  source?: string;
  record?: string;
  replay?: string;
  /** Text as typed: parsed by runList. */
  dnsBudget?: string | number;
  /** A network namespace by `ip netns` name or inode. */
  netns?: string;
}

export function processPositional<T>(y: Argv<T>) {
  return y
    .positional("process", { type: "string", describe: "Only endpoints of this process name (glob) or PID" })
    .middleware((argv) => takeProcessAfterDashes(argv as Parameters<typeof takeProcessAfterDashes>[0]));
}

export function selectionOptions<T>(y: Argv<T>) {
  return y
    .option("all", { alias: "a", type: "boolean", describe: "All endpoints, including listening TCP and unconnected UDP" })
    .option("tcp", { alias: "t", type: "boolean", describe: "TCP endpoints" })
    .option("udp", { alias: "u", type: "boolean", describe: "UDP endpoints" })
    .option("ipv4", { alias: "4", type: "boolean", describe: "IPv4 only" })
    .option("ipv6", { alias: "6", type: "boolean", describe: "IPv6 only" })
    .option("state", { type: "string", array: true, describe: "TCP states, comma-separated (established, listen, time-wait, connected, ...)" })
    .option("port", { type: "string", array: true, describe: "Local or remote port: 25, 1000-2000, smtp" })
    .option("local", { type: "string", array: true, describe: "Local address, CIDR or port: 10.0.0.0/8, [::1]:80, :22" })
    .option("remote", { type: "string", array: true, describe: "Remote address, CIDR or port" })
    .option("hide-unowned", { type: "boolean", describe: "Hide endpoints with no owning process" })
    .option("all-namespaces", { alias: "N", type: "boolean", describe: "Every network namespace (containers, ip netns), each endpoint tagged with its own" });
}

export function listBuilder<T>(y: Argv<T>) {
  return selectionOptions(processPositional(y))
    .option("numeric", { alias: "n", type: "boolean", describe: "Numeric addresses and ports (no names, no DNS)" })
    .option("extended", { alias: "e", type: "boolean", describe: "Add user, bytes, packets and executable path" })
    .option("csv", { alias: "c", type: "boolean", describe: "CSV with a header row" })
    .option("json", { type: "boolean", describe: "One JSON array" })
    .option("ndjson", { type: "boolean", describe: "One JSON object per line" })
    .option("quiet", { alias: "q", type: "boolean", describe: "No notes on stderr" })
    .option("source", { type: "string", choices: ["auto", "netlink", "proc"], default: "auto", describe: "Where sockets are read from (proc: /proc/net fallback)" })
    .option("record", { type: "string", describe: "Write the raw netlink replies to FILE (to reproduce a problem elsewhere)" })
    .option("replay", { type: "string", describe: "Read sockets from a file written by --record instead of the kernel" })
    .option("netns", { type: "string", describe: "Only the network namespace of this name (ip netns) or inode; implies --all-namespaces" })
    .option("dns-budget", numberOption({ default: 1000, describe: "Total milliseconds allowed for reverse DNS (0 to 60000)" }))
    .conflicts("csv", ["json", "ndjson"])
    .conflicts("json", "ndjson")
    .conflicts("record", "replay");
}

export async function runList(args: ListArgs, platform: Platform): Promise<number> {
  trace("arguments parsed");
  const selection = buildSelection(args);
  const dnsBudget = parseNumberOption("--dns-budget", args.dnsBudget ?? 1000, DNS_BUDGET);
  if (args.netns !== undefined && args.netns.trim() === "") throw new UsageError("--netns needs a namespace: its ip netns name or its inode");
  if (args.replay !== undefined) checkReadableFile(args.replay, "--replay");
  if (args.record !== undefined) checkWritableFile(args.record, "--record");
  const engineOptions = {
    source: args.replay !== undefined ? "replay" : sourceChoice(args.source),
    replayFile: args.replay,
    recordFile: args.record,
    allNamespaces: !!args.allNamespaces || args.netns !== undefined,
  } as const;
  const snapshot = withEngine(platform, engineOptions, (engine) => {
    trace("engine ready");
    return engine.snapshot({ protocols: selection.protocols, families: selection.families, withProcesses: true });
  });
  trace(`snapshot of ${snapshot.endpoints.length} endpoints`);
  const netns = args.netns;
  const endpoints: Endpoint[] = snapshot.endpoints
    .filter((ep) => selection.matches(ep) && (netns === undefined || inNamespaceNamed(ep, netns)))
    .sort(compareEndpoints);
  trace("filtered and sorted");
  if (!args.quiet) {
    notes(snapshot.notes);
    const query = args.process === undefined ? "" : String(args.process);
    if (endpoints.length === 0 && query !== "" && !args.allNamespaces && netns === undefined && args.replay === undefined) {
      const note = otherNamespaceNote(query, selection.matches, platform, args.source);
      if (note) notes([note]);
    }
  }

  if (args.json || args.ndjson) {
    const out = new BufferedOutput(1);
    for (const chunk of args.json ? jsonArrayChunks(endpoints, 64) : ndjsonChunks(endpoints, 64)) out.write(chunk);
    out.flush();
  } else if (args.csv) {
    stdout(renderCsv(endpoints));
  } else {
    const names = args.numeric
      ? numericNames()
      : friendlyNames(await resolveHostNames(endpoints, dnsBudget, platform.places.hosts()));
    stdout(renderEndpointTable(endpoints, { extended: !!args.extended, names, width: tableWidth() }));
  }
  trace("written");
  return 0;
}
