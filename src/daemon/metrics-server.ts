/** Serves the metrics text over HTTP (GET /metrics) on the address given by --metrics. */
import { PrivilegeError, UsageError } from "../errors.ts";

export interface MetricsServer {
  /** The address as configured. */
  address: string;
  port: number;
  stop(): void;
}

export interface MetricsAddress {
  hostname: string;
  port: number;
}

export const METRICS_ADDRESS_HINT = '"HOST:PORT" with a port from 1 to 65535, e.g. "127.0.0.1:9464"';

/**
 * `HOST:PORT` (an IPv6 host in brackets, an empty host meaning 127.0.0.1), or what is wrong with
 * it. Checked where the address is read, so that a port the kernel would refuse is told with the
 * file and line it came from, not when the server starts.
 */
export function parseMetricsAddress(address: string): MetricsAddress | string {
  const m = /^(.*):(\d{1,5})$/.exec(address);
  if (!m || /\s/.test(address)) return `must be ${METRICS_ADDRESS_HINT}`;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return `port ${m[2]} is out of range: must be ${METRICS_ADDRESS_HINT}`;
  let hostname = m[1]!;
  if (hostname.startsWith("[") !== hostname.endsWith("]")) return `must be ${METRICS_ADDRESS_HINT}`;
  hostname = hostname.replace(/^\[|\]$/g, "");
  // An IPv6 address needs brackets, or its last group would be read as the port.
  if (hostname.includes(":") && !m[1]!.startsWith("[")) return `an IPv6 host goes in brackets, e.g. "[::1]:9464"`;
  return { hostname: hostname || "127.0.0.1", port };
}

/** Why a bind failed, in words; the errno code as a last resort. */
function bindProblem(err: unknown, port: number): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case "EADDRINUSE":
      return "the port is in use";
    case "EADDRNOTAVAIL":
      return "no interface of this host has that address";
    case "EACCES":
    case "EPERM":
      return port < 1024 ? `ports below 1024 need root or CAP_NET_BIND_SERVICE` : "permission denied";
    default:
      return code ?? (err instanceof Error ? err.message : String(err));
  }
}

/**
 * Starts serving. A malformed address is a UsageError; a port that cannot be bound is one too
 * (exit 2: the address is the user's choice), except for a privileged port (exit 4).
 */
export function serveMetrics(address: string, render: () => string): MetricsServer {
  const parsed = parseMetricsAddress(address);
  if (typeof parsed === "string") throw new UsageError(`--metrics ${address}: ${parsed}`);
  const { hostname, port } = parsed;
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = Bun.serve({
      hostname,
      port,
      fetch(req) {
        const url = new URL(req.url);
        if (url.pathname !== "/metrics") return new Response("see /metrics\n", { status: 404 });
        return new Response(render(), { headers: { "content-type": "text/plain; version=0.0.4" } });
      },
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const message = `cannot serve metrics on ${address}: ${bindProblem(err, port)}`;
    throw (code === "EACCES" || code === "EPERM") && port < 1024 ? new PrivilegeError(message) : new UsageError(message);
  }
  return { address, port: server.port ?? port, stop: () => server.stop(true) };
}
