/**
 * `sockwarden close`: closes connections chosen by their exact address pair or by the filters of
 * `list`. Every action (and, with --dry-run, every action not taken) is in the audit log.
 */
import type { Argv } from "yargs";
import readline from "node:readline";
import { createEngine } from "../engine/index.ts";
import type { CloseMethod, Endpoint } from "../engine/types.ts";
import { buildSelection } from "../filter/endpoint-filter.ts";
import { parsePortSpec } from "../net/ports.ts";
import { compareEndpoints } from "../view/endpoint-order.ts";
import { closeEndpoint, describe } from "../actions/close-endpoint.ts";
import { AuditLog, defaultAuditPath } from "../actions/audit-log.ts";
import { parseEndpointArgument, sameAddress } from "./endpoint-argument.ts";
import { selectionOptions, type ListArgs } from "./list-command.ts";
import { stderr, stdout } from "./output.ts";
import { escapeControl } from "../text/escape-control.ts";
import { PrivilegeError, SockwardenError, UsageError } from "../errors.ts";

export interface CloseArgs extends ListArgs {
  localEndpoint?: string;
  remoteEndpoint?: string;
  localPort?: string[];
  remotePort?: string[];
  pid?: number[];
  dryRun?: boolean;
  yes?: boolean;
  method?: string;
  auditLog?: string;
  reason?: string;
}

export function closeBuilder<T>(y: Argv<T>) {
  return selectionOptions(y)
    .positional("localEndpoint", { type: "string", describe: "Local ADDRESS:PORT of the connection" })
    .positional("remoteEndpoint", { type: "string", describe: "Remote ADDRESS:PORT of the connection" })
    .option("local-port", { type: "string", array: true, describe: "Local port(s): 25, 1000-2000, smtp" })
    .option("remote-port", { type: "string", array: true, describe: "Remote port(s)" })
    .option("process", { type: "string", describe: "Process name (glob) or PID" })
    .option("pid", { type: "number", array: true, describe: "PID holding the socket" })
    .option("dry-run", { type: "boolean", describe: "Show and audit what would be closed; close nothing" })
    .option("yes", { alias: "y", type: "boolean", describe: "Do not ask before closing more than one endpoint" })
    .option("method", { type: "string", choices: ["auto", "destroy", "owner"], default: "auto", describe: "destroy: sock_diag SOCK_DESTROY; owner: take the socket from its process" })
    .option("reason", { type: "string", default: "closed from the command line", describe: "Why, for the audit log" })
    .option("audit-log", { type: "string", describe: `Audit log file (default ${defaultAuditPath()})` });
}

export async function runClose(args: CloseArgs): Promise<number> {
  const pair = args.localEndpoint !== undefined ? parsePair(args) : null;
  const selection = buildSelection({ ...args, all: true, process: args.process });
  const extra: ((ep: Endpoint) => boolean)[] = [];
  for (const spec of args.localPort ?? []) {
    const m = parsePortSpec(String(spec));
    extra.push((ep) => m.matches(ep.localPort));
  }
  for (const spec of args.remotePort ?? []) {
    const m = parsePortSpec(String(spec));
    extra.push((ep) => m.matches(ep.remotePort));
  }
  for (const pid of args.pid ?? []) {
    if (!Number.isInteger(pid) || pid <= 0) throw new UsageError(`bad --pid '${pid}'`);
    extra.push((ep) => ep.pids.includes(pid));
  }
  if (!pair && extra.length === 0 && !hasSelectionFilter(args)) {
    throw new UsageError("say which connections to close: LOCAL REMOTE (e.g. 10.0.0.5:43122 93.184.216.34:25) or filters such as --remote-port 25 --process curl");
  }
  const method = (args.method ?? "auto") as CloseMethod;
  const engine = createEngine({ source: args.source as "auto" | "netlink" | "proc" | undefined, allNamespaces: !!args.allNamespaces });
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
      return 1;
    }
    const audit = new AuditLog(args.auditLog ?? defaultAuditPath());
    const reason = args.reason ?? "closed from the command line";
    if (args.dryRun) {
      for (const ep of matches) {
        const message = `would close ${describe(ep)}`;
        stdout(`${escapeControl(message)}\n`);
        audit.append({ action: "would-close", endpoint: ep, reason, requestedBy: "cli", outcome: "dry-run", message });
      }
      return 0;
    }
    const problem = engine.closePrivilegeProblem?.(method) ?? null;
    if (problem) throw new PrivilegeError(problem);
    if (!engine.destroy) throw new SockwardenError(`the ${engine.name} engine cannot close connections`);
    if (matches.length > 1 && !args.yes) {
      if (!process.stdin.isTTY) {
        for (const ep of matches) stderr(`  ${escapeControl(describe(ep))}\n`);
        throw new SockwardenError(`${matches.length} endpoints match; add --yes to close them all, or narrow the selection`);
      }
      for (const ep of matches) stdout(`  ${escapeControl(describe(ep))}\n`);
      if (!(await confirm(`Close these ${matches.length} endpoints? [y/N] `))) {
        stdout("nothing closed\n");
        return 1;
      }
    }
    let failed = 0;
    for (const ep of matches) {
      const outcome = closeEndpoint(engine, ep, { requestedBy: "cli", method, reason, audit });
      if (outcome.ok) stdout(`${escapeControl(outcome.message)}\n`);
      else {
        failed++;
        stderr(`sockwarden: ${escapeControl(outcome.message)}\n`);
      }
    }
    return failed > 0 ? 1 : 0;
  } finally {
    engine.close();
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

function confirm(question: string): Promise<boolean> {
  return new Promise((resolve) => {
    const rl = readline.createInterface({ input: process.stdin, output: process.stdout });
    rl.question(question, (answer) => {
      rl.close();
      resolve(/^y(es)?$/i.test(answer.trim()));
    });
  });
}
