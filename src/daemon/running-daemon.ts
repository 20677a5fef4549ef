/**
 * The daemon with what runs beside it: its outputs (the sinks), its audit log and its metrics
 * server. A reload reads the configuration again and applies what can change while running:
 * the rules, the sinks, the audit log's file, the metrics address. What the engine was made with
 * changes only with a restart, and a reload that tries is told so, on stderr and to the sinks.
 */
import type { Platform } from "../engine/index.ts";
import { AuditLog, actorOn, defaultAuditPath } from "../actions/audit-log.ts";
import { defaultStateDir } from "../outputs/index.ts";
import { Daemon, type DaemonRecord } from "./daemon.ts";
import type { DaemonConfig } from "./config.ts";
import { serveMetrics, type MetricsServer } from "./metrics-server.ts";
import { METRICS } from "./metric-catalogue.ts";
import { createOutputs, type OutputDependencies, type Outputs } from "./outputs.ts";
import type { Supervised } from "./supervisor.ts";

/** `outcome` of the record that tells the sinks a reload (SIGHUP) was refused, wholly or in part. */
export const RELOAD_REFUSED_OUTCOME = "reload-refused";

export interface RunningDaemonOptions {
  config: DaemonConfig;
  /** The configuration as it is now (its files read again); throws when it does not load. */
  loadConfig: () => DaemonConfig;
  /** The engine, local sockets, process start times, default places and the login user. */
  platform: Platform;
  /** Notes for people (already escaped by the caller where needed). */
  warn: (message: string) => void;
}

export class RunningDaemon implements Supervised {
  private config: DaemonConfig;
  private outputs: Outputs;
  private audit: AuditLog;
  private readonly daemon: Daemon;
  private readonly outputDeps: OutputDependencies & { stateDir: string };
  private metricsServer: MetricsServer | null = null;
  private stopping = false;

  constructor(private readonly options: RunningDaemonOptions) {
    const config = (this.config = options.config);
    const platform = options.platform;
    this.outputDeps = {
      warn: options.warn,
      openLocalDatagram: (path) => platform.openLocalDatagram(path),
      processStartTime: (pid) => platform.processStartTime(pid),
      stateDir: config.stateDir ?? defaultStateDir(platform.places),
    };
    this.outputs = createOutputs(config.sinks, this.outputDeps);
    this.audit = this.openAudit(config.auditLog ?? defaultAuditPath(platform.places));
    this.daemon = new Daemon({
      config,
      createEngine: () => platform.createEngine({ allNamespaces: config.allNamespaces }),
      emit: (records: DaemonRecord[]) => this.outputs.write(records),
      audit: this.audit,
      warn: options.warn,
    });
  }

  /** Serves metrics, loads the rules and takes the first look; on failure releases what it took. */
  async start(): Promise<void> {
    try {
      // Bound before the rules start: an address that cannot be served stops the start at once.
      if (this.config.metrics) this.metricsServer = serveMetrics(this.config.metrics, this.renderMetrics);
      await this.daemon.start();
    } catch (err) {
      this.metricsServer?.stop();
      await this.daemon.stop();
      await this.outputs.close(500);
      throw err;
    }
    // A rule directory may start empty: its rules come as their files do.
    const running = this.daemon.ruleNames.join(", ") || "no rules yet (watching the rule directories)";
    this.options.warn(`running ${running} every ${this.config.interval} s${this.config.dryRun ? " (dry run: nothing is touched)" : ""}`);
  }

  signalled(n: number): void {
    this.daemon.metrics.inc(METRICS.sighups, {}, n);
  }

  async reload(n: number): Promise<void> {
    const signals = n > 1 ? ` (${n} SIGHUPs)` : "";
    try {
      const next = this.options.loadConfig();
      await this.daemon.reload(next);
      if (this.stopping) return;
      if (next.sinks.join("\n") !== this.config.sinks.join("\n")) {
        const old = this.outputs;
        this.outputs = createOutputs(next.sinks, this.outputDeps);
        void old.close(1000);
      }
      const notes = [this.rebindMetrics(next, signals), this.switchAudit(next), ...this.keepUntilRestart(next, signals)];
      this.config = next;
      this.options.warn(`reloaded${signals}: ${[this.daemon.ruleNames.join(", "), ...notes.filter(Boolean)].join("; ")}`);
    } catch (err) {
      // The running configuration goes on; say why the new one was refused, here and to the
      // sinks, as a rule's failure is told.
      this.daemon.metrics.inc(METRICS.reloadFailures);
      this.refuse(`reload refused${signals}, the running configuration continues: ${(err as Error).message}`);
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.daemon.stop(800);
    this.metricsServer?.stop();
    await this.outputs.close(800);
  }

  private openAudit(file: string): AuditLog {
    return new AuditLog(file, undefined, actorOn(this.options.platform));
  }

  private readonly renderMetrics = (): string => {
    this.outputs.describe(this.daemon.metrics);
    return this.daemon.metrics.render();
  };

  private refuse(message: string): void {
    this.options.warn(message);
    this.outputs.write([{ time: new Date().toISOString(), kind: "report", severity: "warning", outcome: RELOAD_REFUSED_OUTCOME, message }]);
  }

  /**
   * Serves metrics where `next` says, the new address bound before the old one is let go. When
   * it cannot be bound the old one stays (and `next` says so), and that part is refused.
   */
  private rebindMetrics(next: DaemonConfig, signals: string): string {
    if (next.metrics === this.config.metrics) return "";
    if (next.metrics === null) {
      this.metricsServer?.stop();
      this.metricsServer = null;
      return "metrics no longer served";
    }
    try {
      const fresh = serveMetrics(next.metrics, this.renderMetrics);
      this.metricsServer?.stop();
      this.metricsServer = fresh;
      return `metrics on ${next.metrics}`;
    } catch (err) {
      const kept = this.metricsServer ? `metrics stay on ${this.metricsServer.address}` : "metrics stay off";
      next.metrics = this.config.metrics;
      this.daemon.metrics.inc(METRICS.reloadFailures);
      this.refuse(`reload refused in part${signals}, ${kept}: ${(err as Error).message}`);
      return kept;
    }
  }

  private switchAudit(next: DaemonConfig): string {
    const file = next.auditLog ?? defaultAuditPath(this.options.platform.places);
    if (file === this.audit.file) return "";
    this.audit = this.openAudit(file);
    this.daemon.setAudit(this.audit);
    return `audit log ${file}`;
  }

  /** What the engine was made with stays as it is until a restart: said, not silently kept. */
  private keepUntilRestart(next: DaemonConfig, signals: string): string[] {
    const config = this.config;
    const kept: string[] = [];
    if (next.sensor !== config.sensor) kept.push(`sensor stays "${config.sensor}"`);
    if (next.allNamespaces !== config.allNamespaces) kept.push(`all_namespaces stays ${config.allNamespaces}`);
    if (next.stateDir !== config.stateDir) kept.push(`state_dir stays ${this.outputDeps.stateDir}`);
    if (kept.length === 0) return [];
    next.sensor = config.sensor;
    next.allNamespaces = config.allNamespaces;
    next.stateDir = config.stateDir;
    this.refuse(`reload refused in part${signals}, ${kept.join(" and ")}: it changes only with a restart`);
    return kept;
  }
}
