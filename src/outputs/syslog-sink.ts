/**
 * Records to syslog: the local socket (/dev/log), or a collector over UDP (RFC 5426, one message
 * per datagram) or TCP (RFC 6587 octet counting: "LEN SP MSG"). Network messages are RFC 5424;
 * local ones default to the syslog(3) form that journald and rsyslog's local socket parse.
 *
 * A missing /dev/log (no syslog daemon) is one failure, reported once; records sent meanwhile
 * are counted as dropped, and sending resumes by itself once the socket is back. TCP reconnects
 * after a failure and resends the batch that did not go out; records wait in a bounded queue,
 * kept on disk over TCP when there is a state directory (sink-spool.ts), so that what is not
 * delivered when the daemon stops goes out first at the next start.
 */
import dgram from "node:dgram";
import net from "node:net";
import os from "node:os";
import type { SocketEngine } from "../engine/types.ts";
import { SystemCallError } from "../errors.ts";
import { withTimeout } from "../timers.ts";
import type { SinkProblemReporter } from "./sink.ts";
import { errorText } from "./sink.ts";
import type { SinkRecord } from "./sink-record.ts";
import { DEFAULT_RETRY, PermanentDeliveryError, type DeliveryProgress, type RetryPolicy } from "./delivery-queue.ts";
import type { SpoolPlace } from "./sink-spool.ts";
import { QueuedSink } from "./queued-sink.ts";
import { rfc3164, rfc5424, utf8Limited, type Facility, type SyslogFormat, type SyslogHeader } from "./syslog-format.ts";

export type LocalDatagram = ReturnType<NonNullable<SocketEngine["openLocalDatagram"]>>;
export type LocalDatagramOpener = (path: string) => LocalDatagram;

export interface SyslogSinkOptions {
  /** "local" (the socket at socketPath), "udp://host:port" or "tcp://host:port". */
  target: string;
  /** For "local": default /dev/log. */
  socketPath?: string;
  /** For "local": opens the socket; pass the engine's openLocalDatagram. */
  openLocalDatagram?: LocalDatagramOpener;
  facility?: Facility;
  appName?: string;
  hostname?: string;
  /** Default rfc3164 for "local", rfc5424 for the network. */
  format?: SyslogFormat;
  /** Longer messages are cut (default: 8192 local, 2048 UDP as RFC 5426 advises, 65536 TCP). */
  maxMessageBytes?: number;
  /** Records that may wait while the collector is unreachable (default 10,000). */
  queueSize?: number;
  /** Bytes the waiting records may hold, the batch being sent included (default 4 MiB). */
  queueBytes?: number;
  /** TCP: connecting, and each batch's write, give up after this long (default 5000 ms). */
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  report?: SinkProblemReporter;
  /** TCP: keep the queue on disk there (the state directory), across restarts. */
  spool?: SpoolPlace;
  /** Told what is not a problem (records from the last run going out first). */
  note?: SinkProblemReporter;
}

export const SYSLOG_DEFAULTS = { socketPath: "/dev/log", facility: "daemon", appName: "sockwarden", queueSize: 10_000, queueBytes: 4 << 20, timeoutMs: 5000 } as const;

interface Transport {
  /** Sends frames from progress.done on, advancing it; throws when one cannot go. */
  send(frames: Buffer[], progress: DeliveryProgress): Promise<void>;
  /** A socket is open now (TCP: a connection nothing has ended yet). */
  readonly connected: boolean;
  close(): void;
}

export interface NetworkTarget {
  protocol: "udp" | "tcp";
  host: string;
  port: number;
}

/** "udp://host:port", "tcp://[::1]:port"; null when the text is not such a target. */
export function parseNetworkTarget(text: string): NetworkTarget | null {
  const m = /^(udp|tcp):\/\/(\[[0-9a-fA-F:.]+\]|[^\s/:\[\]]+):(\d{1,5})\/?$/.exec(text);
  if (!m) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return null;
  const host = m[2]!.startsWith("[") ? m[2]!.slice(1, -1) : m[2]!;
  return { protocol: m[1] as "udp" | "tcp", host, port };
}

export class SyslogSink extends QueuedSink {
  private readonly transport: Transport;
  private readonly header: SyslogHeader;
  private readonly format: SyslogFormat;
  private readonly maxBytes: number;
  private readonly tcp: boolean;

  constructor(o: SyslogSinkOptions) {
    const local = o.target === "local";
    const network = local ? null : parseNetworkTarget(o.target);
    if (!local && !network) throw new RangeError(`not a syslog target: ${o.target} (use local, udp://host:port or tcp://host:port)`);
    const socketPath = o.socketPath ?? SYSLOG_DEFAULTS.socketPath;
    const tcp = network?.protocol === "tcp";
    super({
      name: local ? `syslog:${socketPath}` : `syslog:${o.target}`,
      report: o.report,
      queueSize: o.queueSize ?? SYSLOG_DEFAULTS.queueSize,
      queueBytes: o.queueBytes ?? SYSLOG_DEFAULTS.queueBytes,
      batchSize: 500,
      retry: { ...DEFAULT_RETRY, initialMs: 250, maxMs: 15_000, ...o.retry },
      spooled: tcp && o.spool !== undefined,
    });
    this.tcp = tcp;
    this.format = o.format ?? (local ? "rfc3164" : "rfc5424");
    this.maxBytes = o.maxMessageBytes ?? (local ? 8192 : this.tcp ? 65536 : 2048);
    this.header = {
      facility: o.facility ?? SYSLOG_DEFAULTS.facility,
      hostname: o.hostname ?? os.hostname(),
      appName: o.appName ?? SYSLOG_DEFAULTS.appName,
      procId: process.pid,
    };
    const timeoutMs = o.timeoutMs ?? SYSLOG_DEFAULTS.timeoutMs;
    this.transport = local
      ? new LocalTransport(socketPath, o.openLocalDatagram)
      : network!.protocol === "udp"
        ? new UdpTransport(network!)
        : new TcpTransport(network!, timeoutMs);
    if (this.tcp && o.spool) this.keepOnDisk(o.spool, o.report, o.note);
  }

  protected override deliver(batch: SinkRecord[], progress: DeliveryProgress): Promise<void> {
    return this.transport.send(batch.map((r) => this.frame(r)), progress);
  }

  protected override release(): void {
    this.transport.close();
  }

  /**
   * Whether a socket is open now. Over TCP it turns false as soon as the sink sees the connection
   * end (the collector went away), and true again once the next batch has reconnected.
   */
  get connected(): boolean {
    return this.transport.connected;
  }

  /** One message as it goes on the wire, framed for TCP. */
  frame(r: SinkRecord): Buffer {
    const text = this.format === "rfc5424" ? rfc5424(r, this.header) : rfc3164(r, this.header);
    const msg = utf8Limited(text, this.maxBytes);
    return this.tcp ? Buffer.concat([Buffer.from(`${msg.length} `), msg]) : msg;
  }

}

/** A transport over one socket at a time: opened by the batch that needs it, let go of when it fails. */
abstract class OneSocket<S extends { close(): void }> {
  protected socket: S | null = null;

  get connected(): boolean {
    return this.socket !== null;
  }

  close(): void {
    try {
      this.socket?.close();
    } catch {
      // Already closed: nothing left to release.
    }
    this.socket = null;
  }
}

class LocalTransport extends OneSocket<LocalDatagram> implements Transport {
  constructor(
    private readonly path: string,
    private readonly open: LocalDatagramOpener | undefined,
  ) {
    super();
  }

  async send(frames: Buffer[], progress: DeliveryProgress): Promise<void> {
    if (!this.open) throw new PermanentDeliveryError("this system offers no local syslog socket support");
    try {
      this.socket ??= this.open(this.path);
      for (; progress.done < frames.length; progress.done++) this.socket.send(frames[progress.done]!);
    } catch (err) {
      const code = err instanceof SystemCallError ? err.code : (err as NodeJS.ErrnoException).code;
      // A full receiver may drain soon: retry. No socket, nobody listening, a bad path: the
      // records are counted and dropped, and the next batch looks again.
      if (code === "EAGAIN" || code === "ENOBUFS" || code === "EINTR") throw new Error(`${this.path} is full (${code})`);
      if (code === "ENOENT" || code === "ECONNREFUSED") {
        throw new PermanentDeliveryError(`no syslog daemon listens on ${this.path} (${code})`);
      }
      throw new PermanentDeliveryError(`cannot send to ${this.path}: ${errorText(err)}`);
    }
  }
}

class UdpTransport extends OneSocket<dgram.Socket> implements Transport {
  constructor(private readonly target: NetworkTarget) {
    super();
  }

  async send(frames: Buffer[], progress: DeliveryProgress): Promise<void> {
    const socket = this.open();
    for (; progress.done < frames.length; progress.done++) {
      await new Promise<void>((resolve, reject) => {
        socket.send(frames[progress.done]!, this.target.port, this.target.host, (err) => (err ? reject(err) : resolve()));
      });
    }
  }

  private open(): dgram.Socket {
    if (this.socket) return this.socket;
    const socket = dgram.createSocket(net.isIPv6(this.target.host) ? "udp6" : "udp4");
    // Asynchronous errors arrive as events; without a listener they would end the process.
    socket.on("error", () => {
      if (this.socket === socket) this.socket = null;
      socket.close();
    });
    socket.unref();
    this.socket = socket;
    return socket;
  }
}

class TcpTransport implements Transport {
  private socket: net.Socket | null = null;

  constructor(
    private readonly target: NetworkTarget,
    private readonly timeoutMs: number,
  ) {}

  get connected(): boolean {
    return this.socket !== null;
  }

  async send(frames: Buffer[], progress: DeliveryProgress): Promise<void> {
    const socket = this.socket ?? (await this.connect());
    const data = Buffer.concat(frames.slice(progress.done));
    try {
      await withTimeout(
        new Promise<void>((resolve, reject) => {
          socket.write(data, (err) => (err ? reject(err) : resolve()));
        }),
        this.timeoutMs,
        () => {
          throw new Error(`writing to ${this.target.host}:${this.target.port} took over ${this.timeoutMs} ms`);
        },
      );
      progress.done = frames.length;
    } catch (err) {
      this.drop(socket);
      throw err;
    }
  }

  private connect(): Promise<net.Socket> {
    const { host, port } = this.target;
    return new Promise<net.Socket>((resolve, reject) => {
      const socket = net.connect({ host, port });
      const timer = setTimeout(() => fail(new Error(`connecting to ${host}:${port} took over ${this.timeoutMs} ms`)), this.timeoutMs);
      function fail(err: Error) {
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      }
      socket.once("error", fail);
      socket.once("connect", () => {
        clearTimeout(timer);
        socket.off("error", fail);
        socket.setNoDelay(true);
        socket.unref();
        // Whatever ends the connection, the next batch connects again.
        socket.on("error", () => this.drop(socket));
        socket.on("close", () => this.drop(socket));
        socket.on("end", () => this.drop(socket));
        // A collector sends nothing back; anything it does is read and ignored.
        socket.on("data", () => {});
        this.socket = socket;
        resolve(socket);
      });
    });
  }

  private drop(socket: net.Socket): void {
    if (this.socket === socket) this.socket = null;
    socket.destroy();
  }

  close(): void {
    if (this.socket) this.drop(this.socket);
  }
}
