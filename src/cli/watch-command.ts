/**
 * `sockwarden watch`: endpoint events as they happen — one coloured line each for people,
 * NDJSON for programs. `--count` and `--duration` make it stop by itself.
 */
import type { Argv } from "yargs";
import type { Platform } from "../engine/index.ts";
import { buildSelection } from "../filter/endpoint-filter.ts";
import { MonitorLoop } from "../monitor/monitor-loop.ts";
import { checkResync, resyncOption, sensorOption } from "./sensor-options.ts";
import { intervalOption, parseInterval } from "./interval-option.ts";
import { numberOption, parseNumberOption } from "./number-option.ts";
import { EVENT_TYPES, type EndpointEvent, type EventType } from "../monitor/events.ts";
import { eventJsonLine } from "../view/event-json.ts";
import { eventLine } from "../view/event-line.ts";
import { useColour } from "../format/colour.ts";
import { friendlyNames, numericNames } from "../view/endpoint-names.ts";
import { BackgroundNames } from "./background-names.ts";
import { openMonitor } from "./engine-use.ts";
import { processPositional, selectionOptions, type ListArgs } from "./list-command.ts";
import { BufferedOutput, OutputClosed, stderr } from "./output.ts";
import { WatchStream } from "./watch-stream.ts";
import { isBlankEndpoint } from "../view/blank-endpoint.ts";
import { escapeControl } from "../text/escape-control.ts";
import { UsageError } from "../errors.ts";

export interface WatchArgs extends ListArgs {
  /** Number options arrive as typed (see number-option.ts). */
  interval?: string | string[];
  count?: string | string[];
  duration?: string | string[];
  events?: string[];
  initial?: boolean;
  sensor?: string;
  resync?: string | string[];
}

export function watchBuilder<T>(y: Argv<T>) {
  return selectionOptions(processPositional(y))
    .option("interval", intervalOption())
    .option("ndjson", { type: "boolean", describe: "One JSON event per line" })
    .option("count", numberOption({ describe: "Stop after this many events" }))
    .option("duration", numberOption({ describe: "Stop after this many seconds" }))
    .option("events", { type: "string", array: true, describe: "Event types: opened, closed, state-changed, counters (default: all but counters for people, all for --ndjson)" })
    .option("initial", { type: "boolean", describe: "Report endpoints that exist at start as opened" })
    .option("numeric", { alias: "n", type: "boolean", describe: "Numeric addresses and ports" })
    .option("quiet", { alias: "q", type: "boolean", describe: "No notes on stderr" })
    .option("source", { type: "string", choices: ["auto", "netlink", "proc"], default: "auto", describe: "Where sockets are read from" })
    .option("sensor", sensorOption)
    .option("resync", resyncOption("In between, each interval dumps UDP only, plus TCP when counters events are asked for (the default with --ndjson)."));
}

export function parseEventTypes(values: readonly string[] | undefined, forPrograms: boolean): Set<EventType> {
  if (!values || values.length === 0) {
    return new Set(forPrograms ? EVENT_TYPES : EVENT_TYPES.filter((t) => t !== "counters"));
  }
  const out = new Set<EventType>();
  for (const v of values.flatMap((x) => x.split(","))) {
    const t = v.trim().toLowerCase();
    if (!t) continue;
    if (!(EVENT_TYPES as readonly string[]).includes(t)) {
      throw new UsageError(`unknown event type '${v}': use ${EVENT_TYPES.join(", ")}`);
    }
    out.add(t as EventType);
  }
  return out;
}

export async function runWatch(args: WatchArgs, platform: Platform): Promise<number> {
  const selection = buildSelection(args);
  const interval = parseInterval(args.interval);
  const count = args.count === undefined ? undefined : parseNumberOption("--count", args.count, { integer: true, min: 1 });
  const duration = args.duration === undefined ? undefined : parseNumberOption("--duration", args.duration, { above: 0, max: 1e7, unit: "seconds" });
  const types = parseEventTypes(args.events, !!args.ndjson);
  const resync = checkResync(args.resync);
  // Counters events need TCP dumped every interval; the sensor tells TCP's state changes only.
  const { monitor } = openMonitor(platform, args, selection, types.has("counters"));
  const out = new BufferedOutput(1, 1 << 16);
  const colour = !args.ndjson && useColour(process.stdout);
  const background = args.numeric || args.ndjson ? null : new BackgroundNames(platform.places.hosts());
  const names = background ? friendlyNames(background.hosts) : numericNames();
  // A destroy notice without addresses names no socket anyone could look for.
  const stream = new WatchStream((e) => types.has(e.type) && selection.matchesEvent(e) && !isBlankEndpoint(e.endpoint), count);
  let initial;
  try {
    initial = monitor.start();
  } catch (err) {
    monitor.close();
    throw err;
  }
  if (!args.quiet) for (const note of monitor.notes) stderr(`note: ${escapeControl(note)}\n`);

  return new Promise<number>((resolve) => {
    let finished = false;
    let loop: MonitorLoop | null = null;
    let durationTimer: ReturnType<typeof setTimeout> | null = null;
    const finish = (code: number) => {
      if (finished) return;
      finished = true;
      loop?.stop();
      if (durationTimer) clearTimeout(durationTimer);
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      try {
        out.flush();
      } catch {
        // The reader went away; nothing left to say.
      }
      background?.close();
      monitor.close();
      resolve(code);
    };
    const onSignal = () => finish(0);
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);

    const emit = (events: EndpointEvent[]) => {
      try {
        for (const e of stream.take(events)) out.write(args.ndjson ? eventJsonLine(e) : eventLine(e, names, colour));
        out.flush();
      } catch (err) {
        // The reader went away (`| head`): the end, as for `list`, not a failed refresh to retry.
        if (err instanceof OutputClosed) return finish(0);
        throw err;
      }
      if (background) background.want(events.map((e) => e.endpoint));
      if (stream.done) finish(0);
    };

    if (args.initial) emit(monitor.announce(initial));
    if (finished) return;
    background?.want(initial);
    loop = new MonitorLoop(monitor, {
      intervalMs: interval * 1000,
      resyncMs: resync * 1000,
      resyncAdaptive: args.resync === undefined,
      onEvents: emit,
      collectAfterRefresh: "when-grown",
      onError: (err) => {
        // A failed refresh (e.g. a transient netlink error) is reported and the next one tried.
        stderr(`sockwarden: refresh failed: ${escapeControl((err as Error).message)}\n`);
      },
    });
    loop.start();
    if (duration !== undefined) durationTimer = setTimeout(() => finish(0), duration * 1000);
  });
}
