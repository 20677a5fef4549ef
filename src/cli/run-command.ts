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
import { parseMetricsAddress, serveMetrics, type MetricsServer } from "../daemon/metrics-server.ts";
import { METRICS } from "../daemon/metric-catalogue.ts";
import { createOutputs, type Outputs } from "../daemon/outputs.ts";
import { defaultStateDir } from "../outputs/index.ts";
import { stderr } from "./output.ts";
import { escapeControl } from "../text/escape-control.ts";
import { UsageError } from "../errors.ts";
import type { SensorChoice } from "../monitor/sensor-choice.ts";
import { checkResync, resyncOption, runSensorOption } from "./sensor-options.ts";
import { intervalOption, parseInterval } from "./interval-option.ts";
import { RELOAD_REFUSED_OUTCOME, checkDaemonFiles } from "./run-checks.ts";

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

export function runBuilder<T>(y: Argv<T>) {
  return y
    .option("rule", { alias: "r", type: "string", array: true, describe: "Rule file, directory of rules, or bundled plugin name (repeatable)" })
    .option("config", { alias: "c", type: "string", describe: "TOML configuration (see examples/sockwarden.toml)" })
    .option("interval", intervalOption("Seconds between refreshes (0.1 to 3600; default 1)", false))
    .option("dry-run", { type: "boolean", describe: "Log and audit every close or kill as would-close/would-kill; touch nothing" })
    .option("sink", { type: "string", array: true, describe: "Where alerts go: stdout, stdout:ndjson, file:PATH, syslog, syslog:udp://H:P, webhook:URL, otlp:http://H:4318 (repeatable)" })
    .option("audit-log", { type: "string", describe: `Audit log file (default ${defaultAuditPath()})` })
    .option("state-dir", { type: "string", describe: "Where webhook, OTLP and TCP syslog sinks keep undelivered records across restarts (default /var/lib/sockwarden for root, ~/.local/state/sockwarden otherwise)" })
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
  if (args.stateDir) c.stateDir = args.stateDir;
  if (args.metrics) {
    const address = parseMetricsAddress(args.metrics);
    if (typeof address === "string") throw new UsageError(`--metrics ${args.metrics}: ${address}`);
    c.metrics = args.metrics;
  }
  if (args.allNamespaces) c.allNamespaces = true;
  if (args.sensor !== undefined) c.sensor = args.sensor as SensorChoice;
  if (args.resync !== undefined) c.resync = checkResync(args.resync);
  if (c.sinks.length === 0) c.sinks = ["stdout"];
  if (c.rules.sources.length === 0) throw new UsageError("no rules: give --rule FILE|DIR|PLUGIN or rules.sources in --config (bundled: sockwarden rules list)");
  checkDaemonFiles(c, args.auditLog ? "--audit-log" : c.auditLog ? "audit_log" : null);
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
  const outputDeps = { warn, openLocalDatagram: (path: string) => daemonRef!.openLocalDatagram(path), stateDir: config.stateDir ?? defaultStateDir() };
  let outputs: Outputs = createOutputs(config.sinks, outputDeps);
  let audit = new AuditLog(config.auditLog ?? defaultAuditPath());
  const daemon = new Daemon({
    config,
    createEngine: () => createEngine({ allNamespaces: config.allNamespaces }),
    emit: (records: DaemonRecord[]) => outputs.write(records),
    audit,
    warn,
  });
  daemonRef = daemon;
  const renderMetrics = () => {
    outputs.describe(daemon.metrics);
    return daemon.metrics.render();
  };
  let metricsServer: MetricsServer | null = null;
  try {
    // Bound before the rules start: an address that cannot be served stops the start at once.
    if (config.metrics) metricsServer = serveMetrics(config.metrics, renderMetrics);
    await daemon.start();
  } catch (err) {
    metricsServer?.stop();
    await daemon.stop();
    await outputs.close(500);
    throw err;
  }
  // A rule directory may start empty: its rules come as their files do.
  const running = daemon.ruleNames.join(", ") || "no rules yet (watching the rule directories)";
  warn(`running ${running} every ${config.interval} s${config.dryRun ? " (dry run: nothing is touched)" : ""}`);

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
          const notes = [rebindMetrics(next, signals), switchAudit(next), ...keepUntilRestart(next, signals)];
          config = next;
          warn(`reloaded${signals}: ${[daemon.ruleNames.join(", "), ...notes.filter(Boolean)].join("; ")}`);
        } catch (err) {
          // The running configuration goes on; say why the new one was refused, here and to the
          // sinks, as a rule's failure is told.
          daemon.metrics.inc(METRICS.reloadFailures);
          refuse(`reload refused${signals}, the running configuration continues: ${(err as Error).message}`);
        }
      }
      reloading = false;
    };
    const refuse = (message: string) => {
      warn(message);
      outputs.write([{ time: new Date().toISOString(), kind: "report", severity: "warning", outcome: RELOAD_REFUSED_OUTCOME, message }]);
    };
    /**
     * Serves metrics where `next` says, the new address bound before the old one is let go. When
     * it cannot be bound the old one stays (and `next` says so), and that part is refused.
     */
    const rebindMetrics = (next: DaemonConfig, signals: string): string => {
      if (next.metrics === config.metrics) return "";
      if (next.metrics === null) {
        metricsServer?.stop();
        metricsServer = null;
        return "metrics no longer served";
      }
      try {
        const fresh = serveMetrics(next.metrics, renderMetrics);
        metricsServer?.stop();
        metricsServer = fresh;
        return `metrics on ${next.metrics}`;
      } catch (err) {
        const kept = metricsServer ? `metrics stay on ${metricsServer.address}` : "metrics stay off";
        next.metrics = config.metrics;
        daemon.metrics.inc(METRICS.reloadFailures);
        refuse(`reload refused in part${signals}, ${kept}: ${(err as Error).message}`);
        return kept;
      }
    };
    const switchAudit = (next: DaemonConfig): string => {
      const file = next.auditLog ?? defaultAuditPath();
      if (file === audit.file) return "";
      audit = new AuditLog(file);
      daemon.setAudit(audit);
      return `audit log ${file}`;
    };
    /** What the engine was made with stays as it is until a restart: said, not silently kept. */
    const keepUntilRestart = (next: DaemonConfig, signals: string): string[] => {
      const kept: string[] = [];
      if (next.sensor !== config.sensor) kept.push(`sensor stays "${config.sensor}"`);
      if (next.allNamespaces !== config.allNamespaces) kept.push(`all_namespaces stays ${config.allNamespaces}`);
      if (next.stateDir !== config.stateDir) kept.push(`state_dir stays ${outputDeps.stateDir}`);
      if (kept.length === 0) return [];
      next.sensor = config.sensor;
      next.allNamespaces = config.allNamespaces;
      next.stateDir = config.stateDir;
      refuse(`reload refused in part${signals}, ${kept.join(" and ")}: it changes only with a restart`);
      return kept;
    };
    const onHup = () => {
      hups++;
      daemon.metrics.inc(METRICS.sighups);
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
      if (early > 1) daemon.metrics.inc(METRICS.sighups, {}, early - 1);
      onHup();
    }
  });
}
