/**
 * `sockwarden live`, and plain `sockwarden` on a terminal: the full-screen view modelled on
 * TCPView. This file only turns the command line into the view's parts (engine, monitor, host
 * names, audited actions, the process's terminal) and makes sure the terminal is given back on every
 * way out: quit, Ctrl+C, SIGINT/SIGTERM/SIGHUP, an uncaught error, process exit.
 */
import os from "node:os";
import type { Argv } from "yargs";
import type { Platform } from "../engine/index.ts";
import type { Endpoint } from "../model/endpoint.ts";
import { buildSelection } from "../filter/endpoint-filter.ts";
import { checkResync, resyncOption, sensorOption } from "./sensor-options.ts";
import { intervalOption as numberIntervalOption, parseInterval } from "./interval-option.ts";
import { closeEndpoint } from "../actions/close-endpoint.ts";
import { endProcess } from "../actions/end-process.ts";
import { AuditLog, actorOn, defaultAuditPath } from "../actions/audit-log.ts";
import { LiveController, type ActionResult, type LiveActions } from "../view/live/controller.ts";
import { streamTerminal, type TerminalOutput } from "../view/live/terminal.ts";
import { useColour } from "../format/colour.ts";
import { BackgroundNames } from "./background-names.ts";
import { openMonitor } from "./engine-use.ts";
import { selectionOptions, type ListArgs } from "./list-command.ts";
import { writeAll } from "./output.ts";
import { UsageError } from "../errors.ts";

export interface LiveArgs extends ListArgs {
  /** Number options arrive as typed (see number-option.ts). */
  interval?: string | string[];
  sensor?: string;
  resync?: string | string[];
}

const intervalOption = numberIntervalOption("Live view");

export function liveBuilder<T>(y: Argv<T>) {
  return selectionOptions(y)
    .option("interval", intervalOption)
    .option("numeric", { alias: "n", type: "boolean", describe: "Start with numeric addresses and ports (Ctrl+R switches)" })
    .option("quiet", { alias: "q", type: "boolean", describe: "No notes" })
    .option("source", { type: "string", choices: ["auto", "netlink", "proc"], default: "auto", describe: "Where sockets are read from" })
    .option("sensor", sensorOption)
    .option("resync", resyncOption("The live view shows every connection's counters, so each interval dumps TCP and UDP all the same (in effect a full snapshot) and this changes nothing there; the sensor adds TCP state changes as they happen."));
}

/** The live view's own options for the default command, which also takes every `list` option. */
export function withIntervalOption<T>(y: Argv<T>) {
  return y.option("interval", intervalOption).option("sensor", sensorOption);
}

/**
 * Whether plain `sockwarden` should print a listing rather than open the live view: always when
 * stdout is not a terminal, and when an option asks for a printed format.
 */
export function wantsListing(args: LiveArgs, stdoutIsTerminal: boolean): boolean {
  // The view's --interval is checked even where the run lists, so a typo there is told, not ignored.
  parseInterval(args.interval);
  if (!stdoutIsTerminal) return true;
  // The live view has no namespace choice of its own: --netns is a listing's.
  return !!(args.json || args.ndjson || args.csv || args.extended || args.record || args.replay || (args as { netns?: unknown }).netns !== undefined);
}

export async function runLive(args: LiveArgs, platform: Platform): Promise<number> {
  // Mistyped options are told first, wherever the command runs.
  const interval = parseInterval(args.interval);
  const resync = checkResync(args.resync);
  if (!process.stdout.isTTY) {
    throw new UsageError("the live view needs a terminal: use `sockwarden list` or `sockwarden watch` when writing to a pipe or file");
  }
  // The view shows everything in the selection; "connected only" is a switch (`a`) on top.
  const selection = buildSelection({ ...args, all: true });
  // The view shows every connection's counters, refreshed every interval.
  const { engine, monitor } = openMonitor(platform, args, selection, true);
  // Actions are audited as `close` audits them. A record that cannot be written must not be
  // printed over the screen: the outcome line says so instead.
  let unaudited: string | null = null;
  const audit = new AuditLog(
    defaultAuditPath(platform.places),
    () => {
      unaudited = `not in the audit log: cannot write ${audit.file}`;
    },
    actorOn(platform),
  );
  const audited = async (act: () => Promise<ActionResult> | ActionResult): Promise<ActionResult> => {
    unaudited = null;
    const r = await act();
    return unaudited ? { ok: r.ok, message: `${r.message} (${unaudited})` } : r;
  };
  const reason = "from the live view";
  const actions: LiveActions = {
    closeEndpoint: (ep: Endpoint) => audited(() => closeEndpoint(engine, ep, { requestedBy: "live-view", reason, audit })),
    endProcess: (ep: Endpoint) =>
      audited(() => {
        const p = ep.process;
        if (!p) return { ok: false, message: "no process is known for this endpoint" };
        // The row's process, by its start: a PID that names another process by the time the
        // user confirms is refused (the outcome line says what is there now).
        return endProcess(p, { requestedBy: "live-view", reason, audit });
      }),
  };
  const output: TerminalOutput = {
    get columns() {
      return process.stdout.columns;
    },
    get rows() {
      return process.stdout.rows;
    },
    write: (text) => writeAll(1, text),
    onResize(listener) {
      process.stdout.on("resize", listener);
      process.on("SIGWINCH", listener);
      return () => {
        process.stdout.off("resize", listener);
        process.off("SIGWINCH", listener);
      };
    },
  };
  const terminal = streamTerminal(process.stdin, output);
  const controller = new LiveController({
    monitor,
    terminal,
    actions,
    processDetails: (pid) => engine.processDetails?.(pid) ?? null,
    hostNames: new BackgroundNames(platform.places.hosts()),
    intervalMs: interval * 1000,
    resyncMs: resync * 1000,
    names: !args.numeric,
    connectedOnly: !args.all && !(args.state && args.state.length > 0),
    scope: selection.matches,
    colour: useColour(process.stdout),
    notes: !args.quiet,
    hostName: os.hostname(),
  });

  const onSignal = () => controller.stop();
  const onError = (err: unknown) => controller.fail(err);
  const onExit = () => terminal.restore();
  const signals = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
  for (const s of signals) process.on(s, onSignal);
  process.on("uncaughtException", onError);
  process.on("unhandledRejection", onError);
  process.on("exit", onExit);
  try {
    await controller.run();
  } finally {
    for (const s of signals) process.off(s, onSignal);
    process.off("uncaughtException", onError);
    process.off("unhandledRejection", onError);
    process.off("exit", onExit);
    terminal.restore();
  }
  return 0;
}
