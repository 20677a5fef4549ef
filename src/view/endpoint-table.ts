/**
 * The human table of `list`: netstat-like columns that fit 80 columns, and with `extended` the
 * user, traffic counters and executable path that TCPView shows.
 */
import type { Endpoint } from "../model/endpoint.ts";
import { renderTable, type Column } from "./text-table.ts";
import type { EndpointNames } from "./endpoint-names.ts";

export interface TableOptions {
  extended: boolean;
  names: EndpointNames;
  /** Terminal width; undefined when the output is not a terminal. */
  width?: number;
}

export function renderEndpointTable(endpoints: readonly Endpoint[], o: TableOptions): string {
  const columns: Column[] = [
    { header: "Proto" },
    { header: "Local Address", shrinkOrder: 1, minWidth: 15 },
    { header: "Remote Address", shrinkOrder: 0, minWidth: 15 },
    { header: "State" },
    { header: "PID/Program", shrinkOrder: 2, minWidth: 10 },
  ];
  const namespaces = endpoints.some((ep) => ep.namespace);
  if (namespaces) columns.push({ header: "Namespace", shrinkOrder: 5, minWidth: 9 });
  if (o.extended) {
    columns.push(
      { header: "Unit/Container", shrinkOrder: 6, minWidth: 10 },
      { header: "User", shrinkOrder: 3, minWidth: 8 },
      { header: "Sent", align: "right" },
      { header: "Recv", align: "right" },
      { header: "PktOut", align: "right" },
      { header: "PktIn", align: "right" },
      { header: "Path", shrinkOrder: 4, minWidth: 10 },
    );
  }
  const rows = endpoints.map((ep) => {
    const row = [
      ep.protocol + (ep.family === 6 ? "6" : ""),
      o.names.endpoint(ep.localAddress, ep.localPort, ep.protocol, ep.family, false),
      o.names.endpoint(ep.remoteAddress, ep.remotePort, ep.protocol, ep.family, true),
      ep.state ?? (ep.remotePort !== 0 ? "CONNECTED" : ""),
      ep.process ? `${ep.process.pid}/${ep.process.name}` : "-",
    ];
    if (namespaces) row.push(namespaceLabel(ep));
    if (o.extended) {
      row.push(
        placementLabel(ep),
        ep.process?.user ?? ep.user ?? "-",
        byteCount(ep.bytesSent),
        byteCount(ep.bytesReceived),
        packetCount(ep.packetsSent),
        packetCount(ep.packetsReceived),
        ep.process?.path ?? "-",
      );
    }
    return row;
  });
  return renderTable(columns, rows, o.width);
}

/**
 * 1234 -> "1234", 123456 -> "121Ki": binary prefixes, since 1024 is what the steps are, for a
 * unit the caller writes after (`${humanCount(n)}B`). Exact values stay in JSON/CSV.
 */
export function humanCount(n: number | null): string {
  return scaledCount(n, ["Ki", "Mi", "Gi", "Ti", "Pi"]);
}

/** Bytes for a narrow column: 123456 -> "121KiB", as the live view says them. */
export function byteCount(n: number | null): string {
  return scaledCount(n, ["KiB", "MiB", "GiB", "TiB", "PiB"]);
}

/** Packets are counted, not sized: 123456 -> "123k", in steps of 1000. */
export function packetCount(n: number | null): string {
  return scaledCount(n, ["k", "M", "G", "T", "P"], 1000);
}

/** Exact below 10000, then in steps of `step` (1024 unless told) named by `units`. */
export function scaledCount(n: number | null, units: readonly string[], step = 1024): string {
  if (n === null) return "-";
  if (n < 10_000) return String(n);
  let v = n;
  let u = -1;
  // 1048575 bytes would round to "1024KiB": that is "1.0MiB", and no wider than the rest.
  while ((v >= step || Math.round(v) >= step) && u < units.length - 1) {
    v /= step;
    u++;
  }
  return (v >= 100 ? Math.round(v).toString() : v.toFixed(1)) + units[u];
}

function namespaceLabel(ep: Endpoint): string {
  const ns = ep.namespace;
  if (!ns) return "-";
  return ns.name ?? (ns.container ? `${ns.container.runtime}:${(ns.container.id ?? ns.container.pod ?? "").slice(0, 12)}` : String(ns.inode));
}

function placementLabel(ep: Endpoint): string {
  const p = ep.process;
  if (!p) return "-";
  if (p.container) return `${p.container.runtime}:${(p.container.id ?? p.container.pod ?? "?").slice(0, 12)}`;
  return p.unit ?? "-";
}
