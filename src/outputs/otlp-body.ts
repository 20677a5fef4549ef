/**
 * Records as an OTLP/HTTP JSON logs request (opentelemetry-proto `ExportLogsServiceRequest`,
 * `opentelemetry/proto/logs/v1/logs.proto`, in the protobuf JSON mapping OTLP/HTTP uses: 64-bit
 * integers as decimal strings, enums as numbers). One resource (service.name=sockwarden,
 * host.name), one scope, one log record per record. Attribute names follow OpenTelemetry's
 * semantic conventions where one fits (network.*, process.*), `sockwarden.*` otherwise.
 */
import os from "node:os";
import type { SinkRecord } from "./sink-record.ts";
import { VERSION } from "../version.ts";

type AnyValue = { stringValue: string } | { intValue: string } | { boolValue: boolean };
interface KeyValue {
  key: string;
  value: AnyValue;
}

/** SeverityNumber (logs.proto): INFO 9, INFO2 10, WARN 13, ERROR 17, ERROR2 18 (syslog's crit). */
const SEVERITY_NUMBER: Record<string, number> = { info: 9, notice: 10, warning: 13, error: 17, critical: 18 };

function text(key: string, v: string | null | undefined): KeyValue[] {
  return typeof v === "string" && v !== "" ? [{ key, value: { stringValue: v } }] : [];
}

function int(key: string, v: number | null | undefined): KeyValue[] {
  return typeof v === "number" && Number.isSafeInteger(v) ? [{ key, value: { intValue: String(v) } }] : [];
}

/** Nanoseconds since the epoch as a decimal string; "0" (unknown) for a time that does not read. */
export function unixNanos(iso: string | undefined): string {
  const ms = iso ? Date.parse(iso) : NaN;
  return Number.isFinite(ms) && ms >= 0 ? `${BigInt(Math.trunc(ms)) * 1_000_000n}` : "0";
}

function attributes(r: SinkRecord): KeyValue[] {
  const ep = r.endpoint ?? null;
  const p = r.process ?? ep?.process ?? null;
  return [
    ...text("sockwarden.kind", r.kind),
    ...text("sockwarden.rule", r.rule),
    ...text("sockwarden.action", r.action),
    ...text("sockwarden.outcome", r.outcome),
    ...int("sockwarden.count", r.count),
    ...text("sockwarden.first_time", r.firstTime),
    ...text("sockwarden.last_time", r.lastTime),
    ...(ep
      ? [
          ...text("network.transport", ep.protocol),
          ...text("network.type", ep.family === 6 ? "ipv6" : "ipv4"),
          ...text("network.local.address", ep.localAddress),
          ...int("network.local.port", ep.localPort),
          ...text("network.peer.address", ep.remoteAddress),
          ...int("network.peer.port", ep.remotePort),
          ...text("sockwarden.state", ep.state),
          ...text("sockwarden.namespace", ep.namespace?.name ?? (ep.namespace?.inode !== undefined ? String(ep.namespace.inode) : null)),
        ]
      : []),
    ...(p
      ? [
          ...int("process.pid", p.pid),
          ...text("process.executable.name", p.name),
          ...text("process.executable.path", p.path),
          ...text("process.command_line", p.cmdline),
          ...text("process.owner", p.user),
        ]
      : []),
  ];
}

export interface OtlpResource {
  hostName: string;
}

/** The request body for a batch of records. */
export function otlpLogsBody(batch: readonly SinkRecord[], resource: OtlpResource = { hostName: os.hostname() }): string {
  const observed = unixNanos(new Date().toISOString());
  return JSON.stringify({
    resourceLogs: [
      {
        resource: { attributes: [...text("service.name", "sockwarden"), ...text("service.version", VERSION), ...text("host.name", resource.hostName)] },
        scopeLogs: [
          {
            scope: { name: "sockwarden", version: VERSION },
            logRecords: batch.map((r) => ({
              timeUnixNano: unixNanos(r.time),
              observedTimeUnixNano: observed,
              severityNumber: SEVERITY_NUMBER[r.severity ?? "info"] ?? 9,
              severityText: r.severity ?? "info",
              body: { stringValue: r.message },
              attributes: attributes(r),
            })),
          },
        ],
      },
    ],
  });
}
