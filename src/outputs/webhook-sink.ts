/**
 * Records POSTed as JSON arrays to an HTTP(S) endpoint. Records wait in a bounded queue (when it
 * overflows the oldest are dropped, and counted); a failed POST is retried with exponential
 * backoff and jitter (honouring Retry-After), before anything newer, so records arrive in order
 * and once each when the endpoint comes back. 2xx is accepted; 408, 425, 429 and 5xx are
 * retried; another 4xx means the endpoint refuses this data, so that batch is dropped, counted.
 * With a state directory, the queue is kept on disk (sink-spool.ts): what is not delivered when
 * the daemon stops goes out first at the next start. The OTLP sink is this sink with another body.
 */
import type { SinkProblemReporter } from "./sink.ts";
import type { SinkRecord } from "./sink-record.ts";
import { DEFAULT_RETRY, PermanentDeliveryError, RetryLaterError } from "./delivery-queue.ts";
import type { SpoolPlace } from "./sink-spool.ts";
import { QueuedSink } from "./queued-sink.ts";
import { VERSION } from "../version.ts";

export interface WebhookSinkOptions {
  url: string;
  /** Records that may wait (default 10,000); the batch being sent is not counted in it. */
  queueSize?: number;
  /** Bytes the waiting records may hold, the batch being sent included (default 8 MiB). */
  queueBytes?: number;
  /** Records per POST (default 100). */
  batchSize?: number;
  /** Each POST gives up after this long (default 5000 ms). */
  timeoutMs?: number;
  /** Failed attempts after the first before a batch is dropped (default: retry until closed). */
  maxRetries?: number;
  backoff?: { initialMs?: number; maxMs?: number };
  /** Extra request headers, e.g. Authorization. */
  headers?: Record<string, string>;
  report?: SinkProblemReporter;
  /** Test seam for the backoff jitter, in [0, 1). */
  random?: () => number;
  /** Keep the queue on disk there (the state directory), across restarts. */
  spool?: SpoolPlace;
  /** Told what is not a problem (records from the last run going out first). */
  note?: SinkProblemReporter;
  /** The first word of the sink's name (default "webhook"). */
  kind?: string;
  /** The request body for a batch (default: the records as one JSON array). */
  encode?: (batch: readonly SinkRecord[]) => string;
}

export const WEBHOOK_DEFAULTS = { queueSize: 10_000, queueBytes: 8 << 20, batchSize: 100, timeoutMs: 5000 } as const;

const RETRYABLE_4XX = new Set([408, 425, 429]);

/** The URL without credentials, query or fragment, for names and messages (they may hold secrets). */
export function safeUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

export class WebhookSink extends QueuedSink {
  private readonly url: URL;
  private readonly timeoutMs: number;
  private readonly inFlight = new Set<AbortController>();

  constructor(private readonly o: WebhookSinkOptions) {
    const url = new URL(o.url);
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new RangeError(`a ${o.kind ?? "webhook"} URL must be http:// or https://: ${safeUrl(url)}`);
    }
    super({
      name: `${o.kind ?? "webhook"}:${safeUrl(url)}`,
      report: o.report,
      queueSize: Math.max(1, o.queueSize ?? WEBHOOK_DEFAULTS.queueSize),
      queueBytes: o.queueBytes ?? WEBHOOK_DEFAULTS.queueBytes,
      batchSize: Math.max(1, o.batchSize ?? WEBHOOK_DEFAULTS.batchSize),
      retry: {
        initialMs: o.backoff?.initialMs ?? DEFAULT_RETRY.initialMs,
        maxMs: o.backoff?.maxMs ?? DEFAULT_RETRY.maxMs,
        maxRetries: o.maxRetries ?? DEFAULT_RETRY.maxRetries,
      },
      random: o.random,
      spooled: o.spool !== undefined,
    });
    this.url = url;
    this.timeoutMs = o.timeoutMs ?? WEBHOOK_DEFAULTS.timeoutMs;
    if (o.spool) this.keepOnDisk(o.spool, o.report, o.note);
  }

  protected override release(): void {
    for (const c of this.inFlight) c.abort();
  }

  protected override async deliver(batch: SinkRecord[]): Promise<void> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    this.inFlight.add(controller);
    const where = safeUrl(this.url);
    let response: Response;
    try {
      response = await fetch(this.url, {
        method: "POST",
        headers: { "content-type": "application/json", "user-agent": `sockwarden/${VERSION}`, ...this.o.headers },
        body: (this.o.encode ?? JSON.stringify)(batch),
        signal: controller.signal,
      });
      // Read the body so that the connection can be reused; its content does not matter.
      await response.arrayBuffer().catch(() => undefined);
    } catch (err) {
      if (controller.signal.aborted) throw new Error(`${where}: no answer within ${this.timeoutMs} ms`);
      throw new Error(`${where}: ${describeFetchError(err)}`);
    } finally {
      clearTimeout(timer);
      this.inFlight.delete(controller);
    }
    const status = response.status;
    if (status >= 200 && status < 300) return;
    const what = `${where} answered HTTP ${status}`;
    if (status >= 400 && status < 500 && !RETRYABLE_4XX.has(status)) throw new PermanentDeliveryError(`${what}; records refused`);
    const after = retryAfterMs(response.headers.get("retry-after"));
    if (after !== null) throw new RetryLaterError(what, after);
    throw new Error(what);
  }
}

/** Retry-After as seconds or an HTTP date; null when absent or unreadable. */
export function retryAfterMs(value: string | null, now = Date.now()): number | null {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

function describeFetchError(err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string } };
  const code = e.code ?? e.cause?.code;
  // Messages carry varying detail; the code keeps one failure episode one failure.
  if (code) return code === "ConnectionRefused" ? "connection refused" : code;
  return e.message ?? String(err);
}
