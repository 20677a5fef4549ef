/**
 * Every metric the daemon exposes, with its help text and type, in one place: the names are part
 * of what people's dashboards and alerts rely on, so none is spelt anywhere else.
 */

export interface MetricDef<T extends "counter" | "gauge" = "counter" | "gauge"> {
  readonly name: string;
  readonly help: string;
  readonly type: T;
}

export type CounterDef = MetricDef<"counter">;
export type GaugeDef = MetricDef<"gauge">;

const counter = (name: string, help: string): CounterDef => ({ name, help, type: "counter" });
const gauge = (name: string, help: string): GaugeDef => ({ name, help, type: "gauge" });

export const METRICS = {
  // The refresh loop and what it saw.
  events: counter("sockwarden_events_total", "Endpoint events seen"),
  endpoints: gauge("sockwarden_endpoints", "Endpoints by protocol and state"),
  refreshSeconds: gauge("sockwarden_refresh_seconds", "Duration of the last refresh's processing"),
  refreshErrors: counter("sockwarden_refresh_errors_total", "Refreshes that failed"),
  // Faults noticed outside a refresh's work.
  lostNotices: counter("sockwarden_lost_notices_total", "Times socket-destroy notices were lost (kernel queue overflow, ENOBUFS, or too many between refreshes)"),
  sensorLost: counter("sockwarden_sensor_lost_total", "TCP state changes the eBPF sensor lost (its ring full); a refresh follows at once"),
  clockJumps: counter("sockwarden_clock_jumps_total", "Jumps of the wall clock seen between refreshes"),
  // Rules and what they asked for.
  ruleSeconds: counter("sockwarden_rule_seconds_total", "Time spent in rules"),
  ruleErrors: counter("sockwarden_rule_errors_total", "Rule failures and refused actions"),
  actions: counter("sockwarden_actions_total", "Actions rules asked for, by outcome"),
  // Configuration.
  reloads: counter("sockwarden_reloads_total", "Configuration reloads that took effect"),
  reloadFailures: counter("sockwarden_reload_failures_total", "Reloads refused because the new configuration did not load"),
  sighups: counter("sockwarden_sighups_total", "SIGHUPs received"),
  // Sinks and alert folding.
  sinkQueueDepth: gauge("sockwarden_sink_queue_depth", "Records waiting in a sink's queue"),
  sinkQueueBytes: gauge("sockwarden_sink_queue_bytes", "Bytes the records waiting in a sink's queue hold"),
  sinkQueueBytesLimit: gauge("sockwarden_sink_queue_bytes_limit", "The most bytes a sink's queue may hold"),
  sinkDropped: counter("sockwarden_sink_dropped_total", "Records a sink dropped, by reason: overflow (queue over its bound), failed (delivery gave up), closing"),
  sinkFailures: counter("sockwarden_sink_failures_total", "Failure episodes of a sink"),
  sinkWritten: counter("sockwarden_sink_written_total", "Records a sink delivered"),
  sinkSpoolBytes: gauge("sockwarden_sink_spool_bytes", "Bytes of a sink's spool files in the state directory"),
  sinkSpoolRestored: counter("sockwarden_sink_spool_restored_total", "Records the last run left in a sink's spool, sent first"),
  sinkSpoolTorn: counter("sockwarden_sink_spool_torn_total", "Lines of a sink's spool skipped at start: cut short or unreadable"),
  alertFolding: gauge("sockwarden_alert_folding", "Alert folding counters"),
} as const;
