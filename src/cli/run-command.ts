/**
 * `sockwarden run`: the watch-and-act daemon. Rules from files, directories or bundled plugin
 * names; a TOML configuration; sinks for alerts; an audit log of every action; SIGHUP reloads,
 * SIGTERM and SIGINT stop cleanly.
 */
import type { Argv } from "yargs";
import type { Platform } from "../engine/index.ts";
import { defaultAuditPath } from "../actions/audit-log.ts";
import { defaultConfig, loadConfig, type DaemonConfig } from "../daemon/config.ts";
import { parseMetricsAddress } from "../daemon/metrics-server.ts";
import { RunningDaemon } from "../daemon/running-daemon.ts";
import { Supervisor } from "../daemon/supervisor.ts";
import { stderr } from "./output.ts";
import { escapeControl } from "../text/escape-control.ts";
import { UsageError } from "../errors.ts";
import type { SensorChoice } from "../monitor/sensor-choice.ts";
import { checkResync, resyncOption, runSensorOption } from "./sensor-options.ts";
import { intervalOption, parseInterval } from "./interval-option.ts";
import { checkDaemonFiles } from "./run-checks.ts";
import { holdDaemonSignals } from "./signal-hold.ts";

export interface RunArgs {
  allNamespaces?: boolean;
  rule?: string[];
  config?: string;
  /** Number options arrive as typed (see number-option.ts). */
  interval?: string | string[];
  dryRun?: boolean;
  sink?: string[];
  auditLog?: string;
  stateDir?: string;
  metrics?: string;
  quiet?: boolean;
  sensor?: string;
  resync?: string | string[];
}

export function runBuilder<T>(y: Argv<T>, platform: Platform) {
  return y
    .option("rule", { alias: "r", type: "string", array: true, describe: "Rule file, directory of rules, or bundled plugin name (repeatable)" })
    .option("config", { alias: "c", type: "string", describe: "TOML configuration (see examples/sockwarden.toml)" })
    .option("interval", intervalOption("", false))
    .option("dry-run", { type: "boolean", describe: "Log and audit every close or kill as would-close/would-kill; touch nothing" })
    .option("sink", { type: "string", array: true, describe: "Where alerts go: stdout, stdout:ndjson, file:PATH, syslog, syslog:udp://H:P, webhook:URL, otlp:http://H:4318 (repeatable)" })
    .option("audit-log", { type: "string", describe: `Audit log file (default ${defaultAuditPath(platform.places)})` })
    .option("state-dir", { type: "string", describe: "Where webhook, OTLP and TCP syslog sinks keep undelivered records across restarts (default /var/lib/sockwarden for root, ~/.local/state/sockwarden otherwise)" })
    .option("metrics", { type: "string", describe: "Serve Prometheus metrics on HOST:PORT" })
    .option("all-namespaces", { alias: "N", type: "boolean", describe: "Watch every network namespace (containers, ip netns)" })
    .option("sensor", runSensorOption)
    .option("resync", resyncOption("In between, each interval dumps UDP only, plus TCP when a rule subscribes to counters events. Overrides resync in --config."))
    .option("quiet", { alias: "q", type: "boolean", describe: "No notes on stderr" });
}

/** The configuration file's settings with the command line's on top. */
export function effectiveConfig(args: RunArgs, platform: Platform): DaemonConfig {
  const c = args.config ? loadConfig(args.config) : defaultConfig();
  if (args.rule?.length) c.rules.sources = [...c.rules.sources, ...args.rule];
  if (args.interval !== undefined) c.interval = parseInterval(args.interval);
  if (args.dryRun) c.dryRun = true;
  if (args.sink?.length) c.sinks = args.sink;
  if (args.auditLog) c.auditLog = args.auditLog;
  if (args.stateDir) c.stateDir = args.stateDir;
  if (args.metrics) {
    const address = parseMetricsAddress(args.metrics);
    if (typeof address === "string") throw new UsageError(`--metrics ${args.metrics}: ${address}`);
    c.metrics = args.metrics;
  }
  if (args.allNamespaces) c.allNamespaces = true;
  if (args.sensor !== undefined) c.sensor = args.sensor as SensorChoice;
  if (args.resync !== undefined) {
    c.resync = checkResync(args.resync);
    c.resyncAsked = true;
  }
  if (c.sinks.length === 0) c.sinks = ["stdout"];
  if (c.rules.sources.length === 0) throw new UsageError("no rules: give --rule FILE|DIR|PLUGIN or rules.sources in --config (bundled: sockwarden rules list)");
  checkDaemonFiles(c, args.auditLog ? "--audit-log" : c.auditLog ? "audit_log" : null, platform);
  return c;
}

export async function runDaemon(args: RunArgs, platform: Platform): Promise<number> {
  // The signals' default actions end the process: they are taken over before anything slow
  // (loading the rules, the first look) and acted on once the daemon runs.
  const supervisor = new Supervisor();
  supervisor.listen();
  // Never let go, unlike the supervisor's: see signal-hold.ts.
  holdDaemonSignals();
  try {
    const warn = (m: string) => {
      // Warnings quote sinks' errors and rules' files: shown escaped, like every line for people.
      if (!args.quiet) stderr(`sockwarden: ${escapeControl(m)}\n`);
    };
    const daemon = new RunningDaemon({
      config: effectiveConfig(args, platform),
      loadConfig: () => effectiveConfig(args, platform),
      platform,
      warn,
    });
    await daemon.start();
    return await supervisor.run(daemon);
  } finally {
    supervisor.release();
  }
}
