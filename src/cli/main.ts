/**
 * Entry point of the sockwarden executable: parses the command line and turns every failure into
 * one line on stderr and a distinct exit code.
 */
import yargs, { type Argv } from "yargs";
import { listBuilder, runList, type ListArgs } from "./list-command.ts";
import { runWatch, watchBuilder, type WatchArgs } from "./watch-command.ts";
import { liveBuilder, runLive, wantsListing, withIntervalOption, type LiveArgs } from "./live-command.ts";
import { closeBuilder, runClose, type CloseArgs } from "./close-command.ts";
import { rulesBuilder } from "./rules-command.ts";
import { runBuilder, runDaemon, type RunArgs } from "./run-command.ts";
import { portBuilder, runPort, type PortArgs } from "./port-command.ts";
import { procBuilder, runProc, type ProcArgs } from "./proc-command.ts";
import { completionBuilder, runCompletion, tidyCompletions, type CompletionArgs } from "./completion-command.ts";
import { mistypedCommand } from "./mistyped-command.ts";
import { joinStdinValues } from "./stdin-values.ts";
import { SockwardenError, UsageError } from "../errors.ts";
import { OutputClosed, stderr } from "./output.ts";
import { VERSION } from "../version.ts";
import { trace } from "../trace.ts";
import { escapeControl } from "../text/escape-control.ts";
import { currentPlatform, type Platform } from "../engine/index.ts";

/** Exit codes: 0 ok, 1 failure, 2 usage, 3 bad data, 4 privilege, 5 unsupported, 70 internal. */
const EXIT_INTERNAL = 70;

/** yargs's completion hook that starts from its own answer. */
type FallbackCompletion = (
  current: string,
  argv: unknown,
  defaults: (onCompleted: (err: Error | null, words: string[] | undefined) => void) => void,
  done: (words: string[]) => void,
) => void;

/** How a command that runs its own subcommands hands back its exit code. */
type Settle = (run: Promise<number>) => Promise<void>;

interface CommandSpec {
  command: string;
  describe: string;
  builder: (y: Argv, settle: Settle, platform: Platform) => Argv<unknown>;
  /** The command's work; absent where the builder's subcommands do it (through settle). */
  run?: (args: unknown, platform: Platform) => Promise<number>;
}

/** A command whose work takes its arguments as its builder declares them. */
function command<A>(
  command: string,
  describe: string,
  builder: (y: Argv, platform: Platform) => Argv<unknown>,
  run: (args: A, platform: Platform) => Promise<number>,
): CommandSpec {
  return { command, describe, builder: (y, _settle, platform) => builder(y, platform), run: (args, platform) => run(args as A, platform) };
}

const COMMANDS: CommandSpec[] = [
  {
    command: "$0 [process]",
    describe: "On a terminal: the live view; otherwise the same as list",
    builder: (y) => withIntervalOption(listBuilder(y)),
    run: (a, platform) => {
      const args = a as LiveArgs;
      const typo = mistypedCommand(args.process === undefined ? undefined : String(args.process), commandNames(), args, platform);
      // Nothing is listed: an empty table with exit 0 would read as "no such connections".
      if (typo) throw new UsageError(typo);
      return wantsListing(args, !!process.stdout.isTTY) ? runList(args as ListArgs, platform) : runLive(args, platform);
    },
  },
  command<ListArgs>("list [process]", "List endpoints (default: connected TCP), like netstat and Tcpvcon", listBuilder, runList),
  command<LiveArgs>("live [process]", "Full-screen live view, like TCPView: new rows green, closed red, changed yellow", liveBuilder, runLive),
  command<WatchArgs>("watch [process]", "Stream endpoint events (opened, closed, state changes, traffic) as they happen", watchBuilder, runWatch),
  command<CloseArgs>("close [localEndpoint] [remoteEndpoint]", "Close connections by address pair or by filters (audited)", closeBuilder, runClose),
  command<RunArgs>("run", "The watch-and-act daemon: rules on every change, actions audited", runBuilder, runDaemon),
  {
    command: "rules",
    describe: "Check, test and scaffold sandboxed TypeScript rules; list bundled plugins",
    builder: (y, settle) => rulesBuilder(y, settle),
  },
  command<PortArgs>("port <port>", "What a port is: its service names and the endpoints using it now", portBuilder, runPort),
  command<ProcArgs>("proc <pid>", "A process's properties and every endpoint it holds", procBuilder, runProc),
  command<CompletionArgs>("completion [shell]", "Print the shell's completion script: bash, zsh or fish", completionBuilder, runCompletion),
];

/** The names a first word can be taken for: every command but the default one. */
function commandNames(): string[] {
  return COMMANDS.map((c) => c.command.split(" ")[0]!).filter((n) => n !== "$0");
}

export async function main(argv: string[], platform: Platform = currentPlatform()): Promise<number> {
  trace("started");
  let result = 0;
  const settle: Settle = async (run) => {
    result = await run;
  };
  const parser = yargs(joinStdinValues(argv))
    .scriptName("sockwarden")
    // One value per repeated flag (lists are comma-separated): a greedy array would swallow the
    // next argument, e.g. `--remote-port 25 -6` taking "-6" as a second port.
    .parserConfiguration({ "greedy-arrays": false })
    .usage("sockwarden — every TCP and UDP endpoint with the process behind it\n\nUsage: $0 <command> [options]");
  for (const c of COMMANDS) {
    parser.command(c.command, c.describe, (y) => c.builder(y, settle, platform), async (args) => {
      if (c.run) result = await c.run(args, platform);
    });
  }
  parser
    // The hidden command yargs needs to answer `--get-yargs-completions`, which the scripts of
    // `completion` call; its own script follows $SHELL, so `completion` prints ours instead.
    .completion("completion-script", false, ((_current, _argv, defaults, done) => {
      defaults((_err, words) => done(tidyCompletions(words ?? [])));
    }) satisfies FallbackCompletion)
    .version(VERSION)
    .help()
    .alias("help", "h")
    .strict()
    .wrap(Math.min(100, process.stdout.columns || 100))
    .exitProcess(false)
    .fail((msg, err) => {
      if (err) throw err;
      throw new UsageError(lowerFirst(msg ?? "invalid command line"));
    });
  try {
    await parser.parseAsync();
  } catch (err) {
    return reportError(err);
  }
  return result;
}

function lowerFirst(s: string): string {
  return s.replace(/\s+/g, " ").replace(/^[A-Z](?=[a-z])/, (c) => c.toLowerCase());
}

export function reportError(err: unknown): number {
  if (err instanceof OutputClosed) return 0;
  if (err instanceof SockwardenError) {
    stderr(`sockwarden: ${escapeControl(err.message)}\n`);
    return err.exitCode;
  }
  const e = err as Error;
  stderr(`sockwarden: internal error: ${escapeControl(e?.message?.split("\n")[0] ?? String(err))}\n`);
  if (process.env.SOCKWARDEN_DEBUG) stderr(`${e?.stack ?? ""}\n`);
  return EXIT_INTERNAL;
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => process.exit(reportError(err)),
  );
}
