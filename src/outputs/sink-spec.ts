/**
 * Sinks named in one word, for the command line and the config file:
 *
 *   stdout                              lines for people (coloured on a terminal)
 *   stdout:ndjson?bufferBytes=8M        one JSON object per line
 *   file:/var/log/sockwarden/alerts.ndjson?maxBytes=10M&keep=5&queueBytes=16M
 *   syslog                              the local syslog socket, /dev/log
 *   syslog:/run/other.sock              another local socket
 *   syslog:udp://10.0.0.2:514           RFC 5424 over UDP; tcp://host:port for TCP
 *   syslog:tcp://[2001:db8::2]:6514?facility=local0&appName=warden&format=rfc5424
 *   webhook:https://hooks.example.net/a?token=x#queueSize=5000&timeoutMs=3000&maxRetries=10
 *   otlp:http://collector:4318          OpenTelemetry logs, OTLP/HTTP JSON POSTed to /v1/logs
 *
 * Webhook and OTLP options follow '#', so that the URL's own query string reaches the server
 * untouched (a fragment is never sent). An OTLP URL with no path gets /v1/logs; one with a path
 * is used as it is (as OTEL_EXPORTER_OTLP_LOGS_ENDPOINT would be).
 *
 * With a state directory, the webhook, OTLP and syslog-over-TCP sinks keep their queue on disk.
 *
 * Every sink holds at most a bounded number of bytes of records waiting to go out: queueBytes
 * (file 16M, syslog 4M, webhook 8M) or, for stdout, bufferBytes (4M); at least 64K.
 */
import { UsageError } from "../errors.ts";
import type { Sink, SinkProblemReporter } from "./sink.ts";
import { StdoutSink, type StdoutSinkOptions, type TextStream } from "./stdout-sink.ts";
import { FileSink, type FileSinkOptions } from "./file-sink.ts";
import { SyslogSink, parseNetworkTarget, type LocalDatagramOpener, type SyslogSinkOptions } from "./syslog-sink.ts";
import { WebhookSink, type WebhookSinkOptions } from "./webhook-sink.ts";
import { FACILITIES, type Facility } from "./syslog-format.ts";
import { otlpLogsBody } from "./otlp-body.ts";

export type SinkSpec =
  | ({ type: "stdout" } & StdoutSinkOptions)
  | ({ type: "file" } & FileSinkOptions)
  | ({ type: "syslog" } & SyslogSinkOptions)
  | ({ type: "webhook" } & WebhookSinkOptions)
  | ({ type: "otlp" } & WebhookSinkOptions);

export const SINK_SPEC_EXAMPLES =
  "stdout, stdout:ndjson, file:/var/log/sockwarden/alerts.ndjson?maxBytes=10M&keep=5, syslog, " +
  "syslog:udp://127.0.0.1:514, syslog:tcp://collector:601, webhook:https://example.net/hook#queueSize=1000, otlp:http://127.0.0.1:4318";

function bad(spec: string, why: string): UsageError {
  return new UsageError(`bad sink "${spec}": ${why} (examples: ${SINK_SPEC_EXAMPLES})`);
}

/** Parses one sink spec; a malformed one is a UsageError naming the problem, with examples. */
export function parseSinkSpec(text: string): SinkSpec {
  const spec = text.trim();
  const kind = /^[a-z]*/.exec(spec)![0];
  const after = spec.slice(kind.length);
  // "kind", "kind:rest", and for syslog's default socket also "syslog?options".
  let rest: string | null = null;
  if (after.startsWith(":")) rest = after.slice(1);
  else if (after.startsWith("?") && (kind === "syslog" || kind === "stdout")) rest = after;
  else if (after !== "") throw bad(spec, `expected "${kind || "kind"}:..."`);
  switch (kind) {
    case "stdout":
      return stdoutSpec(spec, rest);
    case "file":
      return fileSpec(spec, rest);
    case "syslog":
      return syslogSpec(spec, rest);
    case "webhook":
      return webhookSpec(spec, rest);
    case "otlp":
      return otlpSpec(spec, rest);
    default:
      throw bad(spec, kind === "" ? "empty" : `unknown kind "${kind}"`);
  }
}

function stdoutSpec(spec: string, rest: string | null): SinkSpec {
  const [format, query] = rest === null ? ["", null] : splitOnce(rest, "?");
  const named = format !== "" || (rest !== null && !rest.startsWith("?"));
  if (named && format !== "human" && format !== "ndjson") throw bad(spec, `stdout takes "human" or "ndjson", not "${format}"`);
  const out: SinkSpec = { type: "stdout", format: format === "ndjson" ? "ndjson" : "human" };
  for (const [key, value] of options(spec, query, ["bufferBytes"])) out.maxBufferedBytes = queueBytes(spec, key, value);
  return out;
}

function fileSpec(spec: string, rest: string | null): SinkSpec {
  if (!rest) throw bad(spec, "file needs a path");
  const [file, query] = splitOnce(rest, "?");
  if (file === "") throw bad(spec, "file needs a path");
  const out: SinkSpec = { type: "file", path: file };
  for (const [key, value] of options(spec, query, ["maxBytes", "keep", "queueSize", "queueBytes"])) {
    if (key === "maxBytes") out.maxBytes = byteSize(spec, key, value);
    else if (key === "keep") out.keep = integer(spec, key, value, 1);
    else if (key === "queueBytes") out.queueBytes = queueBytes(spec, key, value);
    else out.queueSize = integer(spec, key, value, 1);
  }
  return out;
}

function syslogSpec(spec: string, rest: string | null): SinkSpec {
  const [target, query] = rest === null ? ["", null] : splitOnce(rest, "?");
  const out: SinkSpec = { type: "syslog", target: "local" };
  if (target === "" || target === "local") {
    // The default socket.
  } else if (target.startsWith("/")) {
    out.socketPath = target;
  } else if (parseNetworkTarget(target)) {
    out.target = target;
  } else {
    throw bad(spec, `syslog goes to "local", a socket path, udp://host:port or tcp://host:port, not "${target}"`);
  }
  for (const [key, value] of options(spec, query, ["facility", "appName", "format", "queueSize", "queueBytes", "maxMessageBytes"])) {
    if (key === "facility") {
      if (!(value in FACILITIES)) throw bad(spec, `unknown facility "${value}" (${Object.keys(FACILITIES).join(", ")})`);
      out.facility = value as Facility;
    } else if (key === "appName") {
      if (!/^[\x21-\x7e]{1,48}$/.test(value)) throw bad(spec, "appName is 1 to 48 printable ASCII characters");
      out.appName = value;
    } else if (key === "format") {
      if (value !== "rfc5424" && value !== "rfc3164") throw bad(spec, `format is rfc5424 or rfc3164, not "${value}"`);
      out.format = value;
    } else if (key === "queueSize") out.queueSize = integer(spec, key, value, 1);
    else if (key === "queueBytes") out.queueBytes = queueBytes(spec, key, value);
    else out.maxMessageBytes = byteSize(spec, key, value);
  }
  return out;
}

function otlpSpec(spec: string, rest: string | null): SinkSpec {
  return webhookSpec(spec, rest, "otlp");
}

function webhookSpec(spec: string, rest: string | null, kind: "webhook" | "otlp" = "webhook"): SinkSpec {
  if (!rest) throw bad(spec, `${kind} needs an http:// or https:// URL`);
  const [url, fragment] = splitOnce(rest, "#");
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw bad(spec, `${kind} needs an http:// or https:// URL`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw bad(spec, `${kind} needs an http:// or https:// URL`);
  if (kind === "otlp" && parsed.pathname === "/") parsed.pathname = "/v1/logs";
  const out: SinkSpec & WebhookSinkOptions = { type: kind, url: kind === "otlp" ? parsed.href : url };
  for (const [key, value] of options(spec, fragment, ["queueSize", "queueBytes", "batchSize", "timeoutMs", "maxRetries", "backoffMs", "maxBackoffMs"])) {
    if (key === "queueSize") out.queueSize = integer(spec, key, value, 1);
    else if (key === "queueBytes") out.queueBytes = queueBytes(spec, key, value);
    else if (key === "batchSize") out.batchSize = integer(spec, key, value, 1);
    else if (key === "timeoutMs") out.timeoutMs = integer(spec, key, value, 1);
    else if (key === "maxRetries") out.maxRetries = value === "infinite" ? Infinity : integer(spec, key, value, 0);
    else if (key === "backoffMs") out.backoff = { ...out.backoff, initialMs: integer(spec, key, value, 1) };
    else out.backoff = { ...out.backoff, maxMs: integer(spec, key, value, 1) };
  }
  return out;
}

function splitOnce(text: string, sep: string): [string, string | null] {
  const i = text.indexOf(sep);
  return i < 0 ? [text, null] : [text.slice(0, i), text.slice(i + 1)];
}

function options(spec: string, query: string | null, allowed: readonly string[]): [string, string][] {
  if (query === null || query === "") return [];
  return query.split("&").map((pair) => {
    const [key, value] = splitOnce(pair, "=");
    if (!allowed.includes(key)) throw bad(spec, `unknown option "${key}" (takes ${allowed.join(", ")})`);
    if (value === null || value === "") throw bad(spec, `${key} needs a value`);
    return [key, percentDecoded(spec, key, value)];
  });
}

/** A %-escaped option value; a stray or broken escape ("%", "%zz", half a UTF-8 sequence) is bad. */
function percentDecoded(spec: string, key: string, value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw bad(spec, `${key} has a broken %-escape in "${value}" (write a literal % as %25)`);
  }
}

function integer(spec: string, key: string, value: string, min: number): number {
  if (!/^\d+$/.test(value) || Number(value) < min || !Number.isSafeInteger(Number(value))) {
    throw bad(spec, `${key} is a whole number of at least ${min}, not "${value}"`);
  }
  return Number(value);
}

/** 10485760, 512K, 10M, 1G (binary units; KiB/MiB/GiB accepted too); 0 means no limit. */
function byteSize(spec: string, key: string, value: string): number {
  const m = /^(\d+)\s*(?:([KMG])(?:i?B)?)?$/i.exec(value);
  if (!m) throw bad(spec, `${key} is a size such as 10485760 or 10M, not "${value}"`);
  const unit = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[(m[2] ?? "").toUpperCase() as "" | "K" | "M" | "G"];
  return Number(m[1]) * unit;
}

/** Smallest byte bound of a queue: several of the biggest records (record-bounds.ts) fit. */
export const MIN_QUEUE_BYTES = 64 * 1024;

/** A queue's bound in bytes: a size of at least 64K, no "0 means no limit" (nothing unbounded). */
function queueBytes(spec: string, key: string, value: string): number {
  const n = byteSize(spec, key, value);
  if (n < MIN_QUEUE_BYTES) throw bad(spec, `${key} is at least 64K, not "${value}"`);
  return n;
}

/** What sinks need from the rest of the program. */
export interface SinkDependencies {
  /** Told once per failure episode of any sink (e.g. to print a line to stderr). */
  report?: SinkProblemReporter;
  /** The platform's openLocalDatagram, for syslog to the local socket. */
  openLocalDatagram?: LocalDatagramOpener;
  /** Standard output for stdout sinks (default process.stdout). */
  stdout?: TextStream;
  /** The state directory: network sinks keep their queue on disk under it. None: memory only. */
  stateDir?: string;
  /** The platform's processStartTime, for the spools' lock files. */
  processStartTime?: (pid: number) => string;
  /** Told what is not a problem (records from the last run going out first). */
  note?: SinkProblemReporter;
}

/** Makes the sink a spec describes. */
export function createSink(spec: SinkSpec, deps: SinkDependencies = {}): Sink {
  switch (spec.type) {
    case "stdout": {
      const { type: _, ...o } = spec;
      return new StdoutSink({ stream: deps.stdout, report: deps.report, ...o });
    }
    case "file": {
      const { type: _, ...o } = spec;
      return new FileSink({ report: deps.report, ...o });
    }
    case "syslog": {
      const { type: _, ...o } = spec;
      const spool = deps.stateDir !== undefined ? { stateDir: deps.stateDir, target: `syslog:${o.target}`, processStartTime: deps.processStartTime } : undefined;
      return new SyslogSink({ openLocalDatagram: deps.openLocalDatagram, report: deps.report, note: deps.note, spool, ...o });
    }
    case "webhook": {
      const { type: _, ...o } = spec;
      const spool = deps.stateDir !== undefined ? { stateDir: deps.stateDir, target: `webhook:${o.url}`, processStartTime: deps.processStartTime } : undefined;
      return new WebhookSink({ report: deps.report, note: deps.note, spool, ...o });
    }
    case "otlp": {
      const { type: _, ...o } = spec;
      const spool = deps.stateDir !== undefined ? { stateDir: deps.stateDir, target: `otlp:${o.url}`, processStartTime: deps.processStartTime } : undefined;
      return new WebhookSink({ report: deps.report, note: deps.note, spool, kind: "otlp", encode: (batch) => otlpLogsBody(batch), ...o });
    }
  }
}
