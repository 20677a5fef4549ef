/**
 * Where alerts, logs, actions and rule reports go. Typical wiring:
 *
 *   const sinks = new SinkSet(specs.map((s) => createSink(parseSinkSpec(s), { report, openLocalDatagram })));
 *   const alerts = new AlertFolder({ emit: (r) => sinks.write(r) });
 *   alerts.write([ruleActionRecord(action)]);
 *   ...
 *   alerts.close();
 *   await sinks.close(5000);
 */
export type { SinkRecord, SinkRecordKind, ActionRecordInput } from "./sink-record.ts";
export { actionRecord, logRecord, ruleActionRecord, ruleReportRecord } from "./sink-record.ts";
export type { Sink, SinkStats, SinkProblemReporter, DropReason } from "./sink.ts";
export { DROP_REASONS } from "./sink.ts";
export { boundedRecord, recordBytes, byteText, MAX_MESSAGE_CHARS, MAX_FIELD_CHARS } from "./record-bounds.ts";
export { humanLine, ndjsonLine, recordSummary } from "./record-text.ts";
export { StdoutSink, type StdoutSinkOptions, type TextStream } from "./stdout-sink.ts";
export { FileSink, FILE_SINK_DEFAULTS, type FileSinkOptions } from "./file-sink.ts";
export { SyslogSink, SYSLOG_DEFAULTS, type SyslogSinkOptions, type LocalDatagram, type LocalDatagramOpener } from "./syslog-sink.ts";
export { FACILITIES, type Facility, type SyslogFormat } from "./syslog-format.ts";
export { WebhookSink, WEBHOOK_DEFAULTS, type WebhookSinkOptions } from "./webhook-sink.ts";
export { SinkSet, type SinkSetOptions } from "./sink-set.ts";
export { AlertFolder, ALERT_FOLDER_DEFAULTS, type AlertFolderOptions, type AlertFolderStats } from "./alert-folder.ts";
export { parseSinkSpec, createSink, SINK_SPEC_EXAMPLES, type SinkSpec, type SinkDependencies } from "./sink-spec.ts";
export type { RetryPolicy } from "./delivery-queue.ts";
export { defaultStateDir, spoolDir, type SpoolPlace } from "./sink-spool.ts";
export { otlpLogsBody } from "./otlp-body.ts";
export type { SpoolStats } from "./sink.ts";
