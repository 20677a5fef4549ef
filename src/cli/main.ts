/**
 * Entry point of the sockwarden executable: parses the command line and turns every failure into
 * one line on stderr and a distinct exit code.
 */
import yargs from "yargs";
import { listBuilder, runList, type ListArgs } from "./list-command.ts";
import { runWatch, watchBuilder, type WatchArgs } from "./watch-command.ts";
import { liveBuilder, runLive, wantsListing, withIntervalOption, type LiveArgs } from "./live-command.ts";
import { closeBuilder, runClose, type CloseArgs } from "./close-command.ts";
import { rulesBuilder } from "./rules-command.ts";
import { runBuilder, runDaemon, type RunArgs } from "./run-command.ts";
import { portBuilder, runPort, type PortArgs } from "./port-command.ts";
import { procBuilder, runProc, type ProcArgs } from "./proc-command.ts";
import { SockwardenError, UsageError } from "../errors.ts";
import { OutputClosed, stderr } from "./output.ts";
import { VERSION } from "../version.ts";
import { trace } from "../trace.ts";

/** Exit codes: 0 ok, 1 failure, 2 usage, 3 bad data, 4 privilege, 5 unsupported, 70 internal. */
const EXIT_INTERNAL = 70;

export async function main(argv: string[]): Promise<number> {
  trace("started");
  let result = 0;
  const parser = yargs(argv)
    .scriptName("sockwarden")
    // One value per repeated flag (lists are comma-separated): a greedy array would swallow the
    // next argument, e.g. `--remote-port 25 -6` taking "-6" as a second port.
    .parserConfiguration({ "greedy-arrays": false })
    .usage("sockwarden — every TCP and UDP endpoint with the process behind it\n\nUsage: $0 <command> [options]")
    .command(
      "$0 [process]",
      "On a terminal: the live view; otherwise the same as list",
      (y) => withIntervalOption(listBuilder(y)),
      async (args) => {
        const a = args as unknown as LiveArgs;
        result = wantsListing(a, !!process.stdout.isTTY) ? await runList(a) : await runLive(a);
      },
    )
    .command(
      "list [process]",
      "List endpoints (default: connected TCP), like netstat and Tcpvcon",
      (y) => listBuilder(y),
      async (args) => {
        result = await runList(args as unknown as ListArgs);
      },
    )
    .command(
      "live [process]",
      "Full-screen live view, like TCPView: new rows green, closed red, changed yellow",
      (y) => liveBuilder(y),
      async (args) => {
        result = await runLive(args as unknown as LiveArgs);
      },
    )
    .command(
      "watch [process]",
      "Stream endpoint events (opened, closed, state changes, traffic) as they happen",
      (y) => watchBuilder(y),
      async (args) => {
        result = await runWatch(args as unknown as WatchArgs);
      },
    )
    .command(
      "close [localEndpoint] [remoteEndpoint]",
      "Close connections by address pair or by filters (audited)",
      (y) => closeBuilder(y),
      async (args) => {
        result = await runClose(args as unknown as CloseArgs);
      },
    )
    .command(
      "run",
      "The watch-and-act daemon: rules on every change, actions audited",
      (y) => runBuilder(y),
      async (args) => {
        result = await runDaemon(args as unknown as RunArgs);
      },
    )
    .command(
      "rules",
      "Check, test and scaffold sandboxed TypeScript rules; list bundled plugins",
      (y) =>
        rulesBuilder(y, async (run) => {
          result = await run;
        }),
      () => {},
    )
    .command(
      "port <port>",
      "What a port is: its service names and the endpoints using it now",
      (y) => portBuilder(y),
      async (args) => {
        result = await runPort(args as unknown as PortArgs);
      },
    )
    .command(
      "proc <pid>",
      "A process's properties and every endpoint it holds",
      (y) => procBuilder(y),
      async (args) => {
        result = await runProc(args as unknown as ProcArgs);
      },
    )
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
    stderr(`sockwarden: ${err.message}\n`);
    return err.exitCode;
  }
  const e = err as Error;
  stderr(`sockwarden: internal error: ${e?.message?.split("\n")[0] ?? String(err)}\n`);
  if (process.env.SOCKWARDEN_DEBUG) stderr(`${e?.stack ?? ""}\n`);
  return EXIT_INTERNAL;
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => process.exit(reportError(err)),
  );
}
