/**
 * `sockwarden close`: closes connections chosen by their exact address pair or by the filters of
 * `list`. Every action (and, with --dry-run, every action not taken) is in the audit log.
 */
import type { Argv } from "yargs";
import readline from "node:readline";
import type { Platform } from "../engine/index.ts";
import { sourceChoice } from "./engine-use.ts";
import type { CloseMethod } from "../engine/types.ts";
import type { Endpoint } from "../model/endpoint.ts";
import { buildSelection } from "../filter/endpoint-filter.ts";
import { parsePortSpec } from "../net/ports.ts";
import { compareEndpoints } from "../model/endpoint-order.ts";
import { closeEndpoint, endpointLabel } from "../actions/close-endpoint.ts";
import { AuditLog, actorOn, defaultAuditPath, type AuditInput, type AuditRecord } from "../actions/audit-log.ts";
import { parseEndpointArgument, sameAddress } from "./endpoint-argument.ts";
import { selectionOptions, type ListArgs } from "./list-command.ts";
import { stderr, stdout } from "./output.ts";
import { checkWritableFile } from "./user-files.ts";
import { numberOption, parseNumberOptions } from "./number-option.ts";
import { escapeControl } from "../text/escape-control.ts";
import { PrivilegeError, SockwardenError, UsageError } from "../errors.ts";

export interface CloseArgs extends ListArgs {
  localEndpoint?: string;
  remoteEndpoint?: string;
  localPort?: string[];
  remotePort?: string[];
  /** As typed: parsed by runClose. */
  pid?: (string | number)[];
  dryRun?: boolean;
  yes?: boolean;
  method?: string;
  auditLog?: string;
  reason?: string;
}

/** The audit log, also handing each record it writes to the command's JSON output. */
class ReportingAudit extends AuditLog {
  constructor(
    file: string,
    private readonly report: (record: AuditRecord) => void,
    platform: Platform,
  ) {
    super(file, undefined, actorOn(platform));
  }

  override append(input: AuditInput): AuditRecord {
    const record = super.append(input);
    this.report(record);
    return record;
  }
}

/**
 * With --json or --ndjson, stdout carries only the audit records of this run (an array at the
 * end, or one line per record as it is written) and everything for people goes to stderr.
 */
class CloseReport {
  private readonly records: AuditRecord[] = [];
  private ended = false;

  constructor(
    readonly format: "json" | "ndjson" | null,
    private readonly quiet = false,
  ) {}

  /**
   * Lines for people: stdout normally, stderr when stdout is for programs; none with --quiet
   * unless `asking` (the endpoints a confirmation asks about are shown whatever the options).
   */
  say(line: string, asking = false): void {
    if (this.quiet && !asking) return;
    (this.format ? stderr : stdout)(`${escapeControl(line)}\n`);
  }

  record(r: AuditRecord): void {
    if (this.format === "ndjson") stdout(JSON.stringify(r) + "\n");
    else if (this.format === "json") this.records.push(r);
  }

  /**
   * The JSON array, once; `[]` when nothing was acted on. After an error, only when something
   * was: the error's line says the rest.
   */
  end(afterError = false): void {
    if (this.ended || this.format !== "json" || (afterError && this.records.length === 0)) return;
    this.ended = true;
    stdout(this.records.length === 0 ? "[]\n" : `[\n${this.records.map((r) => JSON.stringify(r)).join(",\n")}\n]\n`);
  }
}

export function closeBuilder<T>(y: Argv<T>, platform: Platform) {
  return selectionOptions(y)
    .positional("localEndpoint", { type: "string", describe: "Local ADDRESS:PORT of the connection" })
    .positional("remoteEndpoint", { type: "string", describe: "Remote ADDRESS:PORT of the connection" })
    .option("local-port", { type: "string", array: true, describe: "Local port(s): 25, 1000-2000, smtp" })
    .option("remote-port", { type: "string", array: true, describe: "Remote port(s)" })
    .option("process", { type: "string", describe: "Process name (glob) or PID" })
    .option("pid", numberOption({ array: true, describe: "PID holding the socket" }))
    .option("dry-run", { type: "boolean", describe: "Show and audit what would be closed; close nothing" })
    .option("yes", { alias: "y", type: "boolean", describe: "Do not ask before closing more than one endpoint" })
    .option("method", { type: "string", choices: ["auto", "destroy", "owner"], default: "auto", describe: "destroy: sock_diag SOCK_DESTROY; owner: take the socket from its process" })
    .option("reason", { type: "string", default: "closed from the command line", describe: "Why, for the audit log" })
    .option("audit-log", { type: "string", describe: `Audit log file (default ${defaultAuditPath(platform.places)})` })
    .option("quiet", { alias: "q", type: "boolean", describe: "Print nothing but errors (the audit log and --json still have every record)" })
    .option("json", { type: "boolean", describe: "Print the audit records of what was closed, gone or refused, as one JSON array" })
    .option("ndjson", { type: "boolean", describe: "The same records, one JSON object per line as each is written" })
    .conflicts("json", "ndjson");
}

export async function runClose(args: CloseArgs, platform: Platform): Promise<number> {
  const pair = args.localEndpoint !== undefined ? parsePair(args) : null;
  const selection = buildSelection({ ...args, all: true, process: args.process });
  // As in the selection options, a repeated option is one more choice and options narrow each other.
  const extra: ((ep: Endpoint) => boolean)[] = [];
  const localPorts = (args.localPort ?? []).map((spec) => parsePortSpec(String(spec)));
  if (localPorts.length > 0) extra.push((ep) => localPorts.some((m) => m.matches(ep.localPort)));
  const remotePorts = (args.remotePort ?? []).map((spec) => parsePortSpec(String(spec)));
  if (remotePorts.length > 0) extra.push((ep) => remotePorts.some((m) => m.matches(ep.remotePort)));
  const pids = parseNumberOptions("--pid", args.pid, { integer: true, min: 1 });
  if (pids.length > 0) extra.push((ep) => pids.some((pid) => ep.pids.includes(pid)));
  if (!pair && extra.length === 0 && !hasSelectionFilter(args)) {
    throw new UsageError("say which connections to close: LOCAL REMOTE (e.g. 10.0.0.5:43122 93.184.216.34:25) or filters such as --remote-port 25 --process curl");
  }
  const method = (args.method ?? "auto") as CloseMethod;
  const report = new CloseReport(args.json ? "json" : args.ndjson ? "ndjson" : null, !!args.quiet);
  const engine = platform.createEngine({ source: sourceChoice(args.source), allNamespaces: !!args.allNamespaces });
  try {
    const snapshot = engine.snapshot({ protocols: selection.protocols, families: selection.families, withProcesses: true });
    const matches = snapshot.endpoints
      .filter((ep) => selection.matches(ep) && extra.every((t) => t(ep)))
      .filter((ep) => !pair || (sameAddress(ep.localAddress, pair.local.address) && ep.localPort === pair.local.port && sameAddress(ep.remoteAddress, pair.remote.address) && ep.remotePort === pair.remote.port))
      // The listing process's own sockets (e.g. its netlink socket) are never candidates.
      .filter((ep) => !ep.pids.includes(process.pid))
      .sort(compareEndpoints);
    if (matches.length === 0) {
      stderr("sockwarden: no endpoint matches\n");
      report.end();
      return 1;
    }
    // An action that cannot be audited is not taken: a log file the user named must be writable.
    const checkAuditLog = () => {
      if (args.auditLog !== undefined) checkWritableFile(args.auditLog, "--audit-log", 0o750);
    };
    const audit = new ReportingAudit(args.auditLog ?? defaultAuditPath(platform.places), (r) => report.record(r), platform);
    const reason = args.reason ?? "closed from the command line";
    if (args.dryRun) {
      checkAuditLog();
      for (const ep of matches) {
        const message = `would close ${endpointLabel(ep)}`;
        report.say(message);
        audit.append({ action: "would-close", endpoint: ep, reason, requestedBy: "cli", outcome: "dry-run", message });
      }
      report.end();
      return 0;
    }
    const problem = engine.closePrivilegeProblem?.(method) ?? null;
    if (problem) throw new PrivilegeError(problem);
    if (!engine.destroy) throw new SockwardenError(`the ${engine.name} engine cannot close connections`);
    checkAuditLog();
    if (matches.length > 1 && !args.yes) {
      if (!process.stdin.isTTY) {
        for (const ep of matches) stderr(`  ${escapeControl(endpointLabel(ep))}\n`);
        throw new SockwardenError(`${matches.length} endpoints match; add --yes to close them all, or narrow the selection`);
      }
      for (const ep of matches) report.say(`  ${endpointLabel(ep)}`, true);
      if (!(await confirm(`Close these ${matches.length} endpoints? [y/N] `, report.format ? process.stderr : process.stdout))) {
        report.say("nothing closed");
        report.end();
        return 1;
      }
    }
    let failed = 0;
    for (const ep of matches) {
      const outcome = closeEndpoint(engine, ep, { requestedBy: "cli", method, reason, audit });
      if (outcome.ok) report.say(outcome.message);
      else {
        failed++;
        stderr(`sockwarden: ${escapeControl(outcome.message)}\n`);
      }
    }
    report.end();
    return failed > 0 ? 1 : 0;
  } finally {
    engine.close();
    // After a failure part way, what was done by then is printed, as it is in the audit log.
    report.end(true);
  }
}

function parsePair(args: CloseArgs) {
  if (args.remoteEndpoint === undefined) {
    throw new UsageError(`give both ends: LOCAL REMOTE, e.g. 10.0.0.5:43122 93.184.216.34:25`);
  }
  return { local: parseEndpointArgument(args.localEndpoint!), remote: parseEndpointArgument(args.remoteEndpoint) };
}

function hasSelectionFilter(a: CloseArgs): boolean {
  return !!(a.state?.length || a.port?.length || a.local?.length || a.remote?.length || (a.process !== undefined && a.process !== ""));
}

function confirm(question: string, output: NodeJS.WritableStream): Promise<boolean> {
  return new Promise((resolve) => {
    const rl = readline.createInterface({ input: process.stdin, output });
    rl.question(question, (answer) => {
      rl.close();
      resolve(/^y(es)?$/i.test(answer.trim()));
    });
  });
}
