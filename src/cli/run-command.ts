/**
 * `sockwarden run`: the watch-and-act daemon. Rules from files, directories or bundled plugin
 * names; a TOML configuration; sinks for alerts; an audit log of every action; SIGHUP reloads,
 * SIGTERM and SIGINT stop cleanly.
 */
import type { Argv } from "yargs";
import { createEngine } from "../engine/index.ts";
import { AuditLog, defaultAuditPath } from "../actions/audit-log.ts";
import { Daemon, type DaemonRecord } from "../daemon/daemon.ts";
import { defaultConfig, loadConfig, type DaemonConfig } from "../daemon/config.ts";
import { serveMetrics, type MetricsServer } from "../daemon/metrics-server.ts";
import { createOutputs, type Outputs } from "../daemon/outputs.ts";
import { stderr } from "./output.ts";
import { escapeControl } from "../text/escape-control.ts";
import { UsageError } from "../errors.ts";
import type { SensorChoice } from "../monitor/sensor-choice.ts";
import { checkResync, resyncOption, runSensorOption } from "./sensor-options.ts";
import { intervalOption, parseInterval } from "./interval-option.ts";

export interface RunArgs {
  allNamespaces?: boolean;
  rule?: string[];
  config?: string;
  /** Number options arrive as typed (see number-option.ts). */
  interval?: string | string[];
  dryRun?: boolean;
  sink?: string[];
  auditLog?: string;
  metrics?: string;
  quiet?: boolean;
  sensor?: string;
  resync?: string | string[];
}

export function runBuilder<T>(y: Argv<T>) {
  return y
    .option("rule", { alias: "r", type: "string", array: true, describe: "Rule file, directory of rules, or bundled plugin name (repeatable)" })
    .option("config", { alias: "c", type: "string", describe: "TOML configuration (see examples/sockwarden.toml)" })
    .option("interval", intervalOption("Seconds between refreshes (0.1 to 3600; default 1)", false))
    .option("dry-run", { type: "boolean", describe: "Log and audit every close or kill as would-close/would-kill; touch nothing" })
    .option("sink", { type: "string", array: true, describe: "Where alerts go: stdout, stdout:ndjson, file:PATH, syslog, syslog:udp://H:P, webhook:URL (repeatable)" })
    .option("audit-log", { type: "string", describe: `Audit log file (default ${defaultAuditPath()})` })
    .option("metrics", { type: "string", describe: "Serve Prometheus metrics on HOST:PORT" })
    .option("all-namespaces", { alias: "N", type: "boolean", describe: "Watch every network namespace (containers, ip netns)" })
    .option("sensor", runSensorOption)
    .option("resync", resyncOption("In between, each interval dumps UDP only, plus TCP when a rule subscribes to counters events. Overrides resync in --config."))
    .option("quiet", { alias: "q", type: "boolean", describe: "No notes on stderr" });
}

/** The configuration file's settings with the command line's on top. */
export function effectiveConfig(args: RunArgs): DaemonConfig {
  const c = args.config ? loadConfig(args.config) : defaultConfig();
  if (args.rule?.length) c.rules.sources = [...c.rules.sources, ...args.rule];
  if (args.interval !== undefined) c.interval = parseInterval(args.interval);
  if (args.dryRun) c.dryRun = true;
  if (args.sink?.length) c.sinks = args.sink;
  if (args.auditLog) c.auditLog = args.auditLog;
  if (args.metrics) c.metrics = args.metrics;
  if (args.allNamespaces) c.allNamespaces = true;
  if (args.sensor !== undefined) c.sensor = args.sensor as SensorChoice;
  if (args.resync !== undefined) c.resync = checkResync(args.resync);
  if (c.sinks.length === 0) c.sinks = ["stdout"];
  if (c.rules.sources.length === 0) throw new UsageError("no rules: give --rule FILE|DIR|PLUGIN or rules.sources in --config (bundled: sockwarden rules list)");
  return c;
}

export async function runDaemon(args: RunArgs): Promise<number> {
  // A SIGHUP's default action ends the process: take it over before anything slow (loading the
  // rules, the first look) and act on it once the daemon runs.
  let hupsWhileStarting = 0;
  const earlyHup = () => {
    hupsWhileStarting++;
  };
  process.on("SIGHUP", earlyHup);
  try {
    return await runStarted(args, () => {
      process.off("SIGHUP", earlyHup);
      return hupsWhileStarting;
    });
  } finally {
    process.off("SIGHUP", earlyHup);
  }
}

async function runStarted(args: RunArgs, started: () => number): Promise<number> {
  let config = effectiveConfig(args);
  const warn = (m: string) => {
    // Warnings quote sinks' errors and rules' files: shown escaped, like every line for people.
    if (!args.quiet) stderr(`sockwarden: ${escapeControl(m)}\n`);
  };
  let daemonRef: Daemon | null = null;
  const outputDeps = { warn, openLocalDatagram: (path: string) => daemonRef!.openLocalDatagram(path) };
  let outputs: Outputs = createOutputs(config.sinks, outputDeps);
  const audit = new AuditLog(config.auditLog ?? defaultAuditPath());
  const daemon = new Daemon({
    config,
    createEngine: () => createEngine({ allNamespaces: config.allNamespaces }),
    emit: (records: DaemonRecord[]) => outputs.write(records),
    audit,
    warn,
  });
  daemonRef = daemon;
  let metricsServer: MetricsServer | null = null;
  try {
    await daemon.start();
    if (config.metrics) metricsServer = serveMetrics(config.metrics, () => {
      outputs.describe(daemon.metrics);
      return daemon.metrics.render();
    });
  } catch (err) {
    await daemon.stop();
    await outputs.close(500);
    throw err;
  }
  warn(`running ${daemon.ruleNames.join(", ")} every ${config.interval} s${config.dryRun ? " (dry run: nothing is touched)" : ""}`);

  return new Promise<number>((resolve) => {
    // SIGHUPs that arrive while a reload runs are folded into one more reload after it (the files
    // may have changed since it began), so a storm of them costs two reloads and two lines.
    let hups = 0;
    let reloading = false;
    const reloadAll = async () => {
      reloading = true;
      while (hups > 0 && !stopping) {
        const n = hups;
        hups = 0;
        const signals = n > 1 ? ` (${n} SIGHUPs)` : "";
        try {
          const next = effectiveConfig(args);
          await daemon.reload(next);
          if (stopping) break;
          if (next.sinks.join("\n") !== config.sinks.join("\n")) {
            const old = outputs;
            outputs = createOutputs(next.sinks, outputDeps);
            void old.close(1000);
          }
          config = next;
          warn(`reloaded${signals}: ${daemon.ruleNames.join(", ")}`);
        } catch (err) {
          // The running configuration goes on; say why the new one was refused.
          daemon.metrics.inc("sockwarden_reload_failures_total", "Reloads refused because the new configuration did not load");
          warn(`reload refused${signals}, the running configuration continues: ${(err as Error).message}`);
        }
      }
      reloading = false;
    };
    const onHup = () => {
      hups++;
      daemon.metrics.inc("sockwarden_sighups_total", "SIGHUPs received");
      if (!reloading) void reloadAll();
    };
    let stopping = false;
    const onStop = () => {
      if (stopping) return;
      stopping = true;
      process.off("SIGHUP", onHup);
      // A stop must finish within two seconds whatever the sinks do.
      const hard = setTimeout(() => resolve(0), 1900);
      void (async () => {
        await daemon.stop(800);
        metricsServer?.stop();
        await outputs.close(800);
        clearTimeout(hard);
        resolve(0);
      })();
    };
    process.on("SIGHUP", onHup);
    process.on("SIGINT", onStop);
    process.on("SIGTERM", onStop);
    const early = started();
    if (early > 0) {
      hups = early - 1;
      if (early > 1) daemon.metrics.inc("sockwarden_sighups_total", "SIGHUPs received", {}, early - 1);
      onHup();
    }
  });
}
