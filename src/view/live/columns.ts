/**
 * The live view's columns, as TCPView lays them out: what each cell shows (numeric or with names),
 * how each column sorts, and how the columns fit a terminal width. Pure.
 */
import type { Endpoint } from "../../model/endpoint.ts";
import { parseIP } from "../../net/address.ts";
import { serviceName } from "../../net/services.ts";
import { displayWidth } from "../display-width.ts";
import { compareEndpoints } from "../../model/endpoint-order.ts";
import { byteCount } from "../endpoint-table.ts";
import { escapeControl } from "../../text/escape-control.ts";

export const COLUMN_IDS = ["process", "pid", "proto", "local", "localPort", "remote", "remotePort", "state", "sent", "recv", "opened", "namespace"] as const;
export type ColumnId = (typeof COLUMN_IDS)[number];

/** Whether addresses and ports are shown with names, and the host names known so far. */
export interface NameMode {
  on: boolean;
  hosts: ReadonlyMap<string, string>;
}

export interface ColumnSpec {
  id: ColumnId;
  header: string;
  /** The header where the column is cut narrower than `header` ("Local" for "Local Address"). */
  shortHeader?: string;
  align: "left" | "right";
  /** Narrowest the column may be cut to (middle elided); undefined: never cut. */
  minWidth?: number;
  /**
   * Narrowest it is cut to while columns can still be hidden instead: a process name keeps the
   * 15 characters the kernel gives it, and an IPv4 address its whole text, before counters go.
   */
  comfortWidth?: number;
  /** Widest it grows, so one long name cannot push the rest off the screen. */
  maxWidth?: number;
  /** When even the narrowest layout is too wide, columns are hidden, lowest number first. */
  hideOrder?: number;
  /** Hidden only once every other column is cut to its narrowest (the PID, which actions need). */
  hideLast?: boolean;
  /** Shown only when some row has something in it (the namespace, with --all-namespaces). */
  optional?: boolean;
  text(ep: Endpoint, names: NameMode): string;
  /** Ascending order of the column's values (not of the text: ports sort as numbers). */
  compare(a: Endpoint, b: Endpoint): number;
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const num = (a: number, b: number) => a - b;

/** Addresses sort by family, then as bytes, so 10.0.0.9 comes before 10.0.0.10. */
const addressKeys = new Map<string, string>();
function addressKey(address: string): string {
  let key = addressKeys.get(address);
  if (key === undefined) {
    const ip = parseIP(address);
    key = ip ? `${ip.family}${Buffer.from(ip.bytes).toString("hex")}` : `9${address}`;
    if (addressKeys.size > 100_000) addressKeys.clear();
    addressKeys.set(address, key);
  }
  return key;
}

export function stateText(ep: Endpoint): string {
  return ep.state ?? (ep.remotePort !== 0 ? "CONNECTED" : "");
}

function processName(ep: Endpoint): string {
  return ep.process ? escapeControl(ep.process.name) : "-";
}

function hostText(address: string, names: NameMode): string {
  const host = names.on ? names.hosts.get(address) : undefined;
  return host === undefined ? address : escapeControl(host);
}

function portText(port: number, ep: Endpoint, names: NameMode, remote: boolean): string {
  if (remote && port === 0) return "*";
  return (names.on ? serviceName(port, ep.protocol) : null) ?? String(port);
}

/** The address and port columns of one side of the connection: both sides show and sort alike. */
function sideColumns(side: "local" | "remote"): ColumnSpec[] {
  const remote = side === "remote";
  const address = (ep: Endpoint) => (remote ? ep.remoteAddress : ep.localAddress);
  const port = (ep: Endpoint) => (remote ? ep.remotePort : ep.localPort);
  return [
    {
      id: side, header: remote ? "Remote Address" : "Local Address", shortHeader: remote ? "Remote" : "Local",
      align: "left", minWidth: 9, comfortWidth: 15, maxWidth: 40,
      text: (ep, names) => hostText(address(ep), names),
      compare: (a, b) => cmp(addressKey(address(a)), addressKey(address(b))) || port(a) - port(b),
    },
    {
      id: remote ? "remotePort" : "localPort", header: "Port", align: "right", minWidth: 5, maxWidth: 12,
      text: (ep, names) => portText(port(ep), ep, names, remote),
      compare: (a, b) => port(a) - port(b),
    },
  ];
}

/** Unowned endpoints come after every named process in ascending order. */
const processSortKey = (ep: Endpoint) => (ep.process ? ep.process.name.toLowerCase() : "\uffff");
/** Like the process and the PID, an unknown count ("-") comes after every known one in ascending order. */
const counter = (n: number | null) => (n === null ? Infinity : n);


export const COLUMNS: readonly ColumnSpec[] = [
  {
    id: "process", header: "Process", align: "left", minWidth: 6, comfortWidth: 15, maxWidth: 20,
    text: processName,
    compare: (a, b) => cmp(processSortKey(a), processSortKey(b)),
  },
  {
    id: "pid", header: "PID", align: "right", hideOrder: 4, hideLast: true,
    text: (ep) => (ep.process ? String(ep.process.pid) : "-"),
    compare: (a, b) => num(a.process?.pid ?? Infinity, b.process?.pid ?? Infinity),
  },
  {
    id: "proto", header: "Proto", align: "left", hideOrder: 3,
    text: (ep) => ep.protocol + (ep.family === 6 ? "6" : ""),
    compare: (a, b) => cmp(a.protocol, b.protocol) || a.family - b.family,
  },
  ...sideColumns("local"),
  ...sideColumns("remote"),
  {
    id: "state", header: "State", align: "left",
    text: stateText,
    compare: (a, b) => cmp(stateText(a), stateText(b)),
  },
  {
    id: "sent", header: "Sent", align: "right", hideOrder: 2,
    text: (ep) => byteCount(ep.bytesSent),
    compare: (a, b) => num(counter(a.bytesSent), counter(b.bytesSent)),
  },
  {
    id: "recv", header: "Recv", align: "right", hideOrder: 1,
    text: (ep) => byteCount(ep.bytesReceived),
    compare: (a, b) => num(counter(a.bytesReceived), counter(b.bytesReceived)),
  },
  {
    // TCPView's Create Time. Only connections opened while the sensor (or Windows) watched have
    // one, so the column shows only when some row does, and is the first to go when space is short.
    id: "opened", header: "Opened", align: "left", hideOrder: -1, optional: true,
    text: (ep) => openedText(ep),
    compare: (a, b) => num(openedMs(a), openedMs(b)),
  },
  {
    id: "namespace", header: "Namespace", align: "left", minWidth: 9, maxWidth: 24, hideOrder: 0, optional: true,
    text: namespaceText,
    compare: (a, b) => cmp(namespaceText(a), namespaceText(b)),
  },
];

/** When the connection was opened, in ms (Linux's sensor, or Windows); unknown sorts last. */
function openedMs(ep: Endpoint): number {
  const at = ep.openedAt ?? ep.createdAt;
  const ms = at ? Date.parse(at) : Number.NaN;
  return Number.isFinite(ms) ? ms : Infinity;
}

const two = (n: number) => String(n).padStart(2, "0");

/**
 * Local time of day for a connection opened today (the common case in a live view), with the
 * month and day before it otherwise; "" when unknown.
 */
export function openedText(ep: Endpoint, now = new Date()): string {
  const ms = openedMs(ep);
  if (ms === Infinity) return "";
  const d = new Date(ms);
  const time = `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  const today = d.getFullYear() === now.getFullYear() && d.getMonth() === now.getMonth() && d.getDate() === now.getDate();
  return today ? time : `${two(d.getMonth() + 1)}-${two(d.getDate())} ${time}`;
}

/** The namespace as people know it: its ip-netns name, its container, or its inode. */
export function namespaceText(ep: Endpoint): string {
  const ns = ep.namespace;
  if (!ns) return "";
  if (ns.name) return escapeControl(ns.name);
  if (ns.container) return escapeControl(`${ns.container.runtime}:${(ns.container.id ?? ns.container.pod ?? "").slice(0, 12)}`);
  return String(ns.inode);
}

export function column(id: ColumnId): ColumnSpec {
  return COLUMNS[COLUMN_IDS.indexOf(id)]!;
}

/** A column's name for the status line: "Local Port" rather than the bare header "Port". */
export function columnTitle(id: ColumnId): string {
  if (id === "localPort") return "Local Port";
  if (id === "remotePort") return "Remote Port";
  return column(id).header;
}

/**
 * Orders endpoints by one column; ties fall back to the listing order (ascending whatever the
 * direction), so rows do not swap places between refreshes.
 */
export function compareBy(id: ColumnId, descending: boolean): (a: Endpoint, b: Endpoint) => number {
  const spec = column(id);
  return (a, b) => {
    const c = spec.compare(a, b);
    if (c !== 0) return descending ? -c : c;
    return compareEndpoints(a, b);
  };
}

/**
 * Everything a filter can match in a row, lower case: process name and PID, protocol,
 * addresses and ports (numeric, and as shown with names), state.
 */
export function searchText(ep: Endpoint, names: NameMode): string {
  const parts = [
    ep.process ? `${ep.process.name} ${ep.process.pid}` : "-",
    ep.protocol + (ep.family === 6 ? "6" : ""),
    ep.localAddress, String(ep.localPort),
    ep.remoteAddress, String(ep.remotePort),
    stateText(ep),
    // As `--state` takes it: close-wait as well as close_wait.
    stateText(ep).replace(/_/g, "-"),
    namespaceText(ep),
  ];
  if (names.on) {
    for (const [a, p, remote] of [[ep.localAddress, ep.localPort, false], [ep.remoteAddress, ep.remotePort, true]] as const) {
      parts.push(hostText(a, names), portText(p, ep, names, remote));
    }
  }
  return parts.join(" ").toLowerCase();
}

/** Terms separated by spaces must all occur (case-insensitive substrings). */
export function filterTerms(text: string): string[] {
  return text.toLowerCase().split(/\s+/).filter((t) => t !== "");
}

export function matchesTerms(ep: Endpoint, terms: readonly string[], names: NameMode): boolean {
  if (terms.length === 0) return true;
  const text = searchText(ep, names);
  return terms.every((t) => text.includes(t));
}

export interface PlacedColumn {
  spec: ColumnSpec;
  width: number;
}

/** Space between columns: one, as in top and htop, so that more fits on 80 columns. */
export const COLUMN_GAP = 1;

/**
 * Chooses which columns to show and how wide, for the widest text each has (`natural`, in
 * terminal cells, headers included). Everything when it fits. Otherwise, in this order until it
 * fits: cut the columns that may be cut down to their comfortable width (widest first, so cuts
 * spread), hiding columns in their hide order where that is not enough; then cut further, to
 * their narrowest; then hide the columns kept for last. A process name is thus not cut short
 * while counters are on show, nor the PID hidden while a name could give a few characters.
 */
export function fitColumns(natural: ReadonlyMap<ColumnId, number>, width: number): PlacedColumn[] {
  const byHide = COLUMNS.filter((c) => c.hideOrder !== undefined).sort((a, b) => a.hideOrder! - b.hideOrder!);
  // An optional column with nothing in it (natural width 0) is not shown at all.
  const all = COLUMNS.filter((c) => !c.optional || (natural.get(c.id) ?? 0) > 0);
  const want = (c: ColumnSpec) => Math.min(Math.max(natural.get(c.id) ?? 0, displayWidth(c.header)), c.maxWidth ?? Infinity);
  const floor = (c: ColumnSpec, comfortable: boolean) => {
    const f = comfortable ? (c.comfortWidth ?? c.minWidth) : c.minWidth;
    return f === undefined ? want(c) : Math.min(want(c), Math.max(f, displayWidth(c.shortHeader ?? c.header)));
  };
  const total = (cols: readonly ColumnSpec[], w: (c: ColumnSpec) => number) =>
    cols.reduce((sum, c) => sum + w(c), 0) + COLUMN_GAP * Math.max(0, cols.length - 1);

  // The layouts to try, most generous first: which columns, cut how far.
  const steps: Array<{ shown: ColumnSpec[]; comfortable: boolean }> = [{ shown: all, comfortable: true }];
  let shown = all;
  for (const c of byHide.filter((c) => !c.hideLast)) {
    shown = shown.filter((s) => s !== c);
    steps.push({ shown, comfortable: true });
  }
  steps.push({ shown, comfortable: false });
  for (const c of byHide.filter((c) => c.hideLast)) {
    shown = shown.filter((s) => s !== c);
    steps.push({ shown, comfortable: false });
  }
  const chosen = steps.find((s) => total(s.shown, (c) => floor(c, s.comfortable)) <= width) ?? steps[steps.length - 1]!;

  const widths = chosen.shown.map(want);
  let over = total(chosen.shown, want) - width;
  // A character at a time from the widest column that may still give one: first down to the
  // comfortable widths, then (where that is not enough) to the narrowest.
  for (const comfortable of [true, false]) {
    while (over > 0) {
      let best = -1;
      chosen.shown.forEach((c, i) => {
        if (widths[i]! > floor(c, comfortable) && (best < 0 || widths[i]! > widths[best]!)) best = i;
      });
      if (best < 0) break;
      widths[best]!--;
      over--;
    }
  }
  return chosen.shown.map((spec, i) => ({ spec, width: widths[i]! }));
}
