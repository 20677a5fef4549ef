/** Serves the metrics text over HTTP (GET /metrics) on the address given by --metrics. */
import { UsageError } from "../errors.ts";

export interface MetricsServer {
  port: number;
  stop(): void;
}

export function serveMetrics(address: string, render: () => string): MetricsServer {
  const m = /^(.*):(\d+)$/.exec(address);
  if (!m) throw new UsageError(`--metrics must be HOST:PORT, e.g. 127.0.0.1:9464, not '${address}'`);
  const hostname = m[1]!.replace(/^\[|\]$/g, "") || "127.0.0.1";
  const port = Number(m[2]);
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
    throw new UsageError(`cannot serve metrics on ${address}: ${(err as Error).message}`);
  }
  return { port: server.port ?? port, stop: () => server.stop(true) };
}
