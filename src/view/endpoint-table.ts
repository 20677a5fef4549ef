/**
 * The human table of `list`: netstat-like columns that fit 80 columns, and with `extended` the
 * user, traffic counters and executable path that TCPView shows.
 */
import type { Endpoint } from "../engine/types.ts";
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
        humanCount(ep.bytesSent),
        humanCount(ep.bytesReceived),
        humanCount(ep.packetsSent),
        humanCount(ep.packetsReceived),
        ep.process?.path ?? "-",
      );
    }
    return row;
  });
  return renderTable(columns, rows, o.width);
}

/** 1234 -> "1234", 123456 -> "121K": short enough for a table, exact values stay in JSON/CSV. */
export function humanCount(n: number | null): string {
  return scaledCount(n, ["K", "M", "G", "T", "P"]);
}

/** Exact below 10000, then in steps of 1024 named by `units`. */
export function scaledCount(n: number | null, units: readonly string[]): string {
  if (n === null) return "-";
  if (n < 10_000) return String(n);
  let v = n;
  let u = -1;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
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
