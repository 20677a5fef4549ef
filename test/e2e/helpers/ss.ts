/**
 * `ss -tuanpH` as the reference: run it (inside a namespace) and parse each line into the same
 * shape sockwarden prints, so the two can be compared field by field.
 *
 * Address forms iproute2's ss prints with -n (misc/ss.c, inet_addr_print):
 *   127.0.0.1:80   [::1]:80   [::ffff:127.0.0.1]:80
 *   *:80           an IPv6 socket bound to :: that also accepts IPv4 (not IPV6_V6ONLY)
 *   0.0.0.0:*  [::]:*  *:*   port 0 is printed as *
 *   0.0.0.0%lo:53  [fe80::1]%eth0:546   the socket is bound to an interface
 */

import type { Netns } from "./netns.ts";
import { describeRun } from "./netns.ts";

export type Protocol = "tcp" | "udp";

/** Kernel TCP state names, as sockwarden prints them. */
export type KernelState =
  | "ESTABLISHED"
  | "SYN_SENT"
  | "SYN_RECV"
  | "FIN_WAIT1"
  | "FIN_WAIT2"
  | "TIME_WAIT"
  | "CLOSE"
  | "CLOSE_WAIT"
  | "LAST_ACK"
  | "LISTEN"
  | "CLOSING";

/** ss's state names (misc/ss.c, sstate_name) to the kernel's. */
const SS_TCP_STATES: Record<string, KernelState> = {
  ESTAB: "ESTABLISHED",
  "SYN-SENT": "SYN_SENT",
  "SYN-RECV": "SYN_RECV",
  "FIN-WAIT-1": "FIN_WAIT1",
  "FIN-WAIT-2": "FIN_WAIT2",
  "TIME-WAIT": "TIME_WAIT",
  // ss prints a TCP socket in the kernel's CLOSE state as UNCONN.
  UNCONN: "CLOSE",
  "CLOSE-WAIT": "CLOSE_WAIT",
  "LAST-ACK": "LAST_ACK",
  LISTEN: "LISTEN",
  CLOSING: "CLOSING",
};

/** States ss can print for a UDP socket (connected ones show as ESTAB). */
const SS_UDP_STATES = new Set(["UNCONN", "ESTAB"]);

export interface SsProcess {
  name: string;
  pid: number;
  fd: number;
}

export interface SsEntry {
  protocol: Protocol;
  family: 4 | 6;
  /** Kernel state name; null for UDP. */
  state: KernelState | null;
  /** ss's own state word, unmapped. */
  ssState: string;
  receiveQueue: number;
  sendQueue: number;
  localAddress: string;
  localPort: number;
  /** Interface the socket is bound to (the `%iface` suffix), or null. */
  localInterface: string | null;
  remoteAddress: string;
  remotePort: number;
  /** Distinct pids holding the socket, ascending. */
  pids: number[];
  processes: SsProcess[];
}

export interface SsAddress {
  address: string;
  family: 4 | 6;
  /** Printed as `*`: the IPv6 any address on a socket that also accepts IPv4. */
  wildcard: boolean;
  port: number;
  interface: string | null;
}

/** Parses one address:port column of `ss -n`. */
export function parseSsAddress(text: string): SsAddress {
  let host: string;
  let rest: string;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0) throw new Error(`ss address without closing bracket: ${text}`);
    host = text.slice(1, close);
    rest = text.slice(close + 1);
  } else {
    const colon = text.lastIndexOf(":");
    if (colon < 0) throw new Error(`ss address without port: ${text}`);
    host = text.slice(0, colon);
    rest = text.slice(colon);
    const percent = host.indexOf("%");
    if (percent >= 0) {
      rest = host.slice(percent) + rest;
      host = host.slice(0, percent);
    }
    if (host.includes(":")) throw new Error(`unbracketed IPv6 address from ss: ${text}`);
  }

  const match = /^(?:%([^:]+))?:(\d+|\*)$/.exec(rest);
  if (!match) throw new Error(`cannot parse ss address ${text}`);
  const iface = match[1] ?? null;
  const port = match[2] === "*" ? 0 : Number(match[2]);
  if (port > 65535) throw new Error(`port out of range in ss address ${text}`);

  if (host === "*") return { address: "::", family: 6, wildcard: true, port, interface: iface };
  if (host.includes(":")) return { address: host, family: 6, wildcard: false, port, interface: iface };
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(host)) throw new Error(`unexpected host in ss address ${text}`);
  return { address: host, family: 4, wildcard: false, port, interface: iface };
}

/** Parses ss's process column: users:(("name",pid=1,fd=3),("other",pid=2,fd=3)). */
export function parseSsProcesses(text: string): SsProcess[] {
  const processes: SsProcess[] = [];
  const pattern = /\("((?:[^"\\]|\\.)*)",pid=(\d+),fd=(\d+)\)/g;
  for (const match of text.matchAll(pattern)) {
    processes.push({ name: match[1] ?? "", pid: Number(match[2]), fd: Number(match[3]) });
  }
  if (text.trim() !== "" && processes.length === 0) {
    throw new Error(`cannot parse ss process column: ${text}`);
  }
  return processes;
}

const LINE = /^(\S+)\s+(\S+)\s+(\d+)\s+(\d+)\s+(\S+)\s+(\S+)(?:\s+(.*?))?\s*$/;

/** Parses one line of `ss -tuanpH`. */
export function parseSsLine(line: string): SsEntry {
  const match = LINE.exec(line);
  if (!match) throw new Error(`cannot parse ss line: ${line}`);
  const [, netid, ssState, recvQ, sendQ, localText, remoteText, processText] = match as unknown as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
    string | undefined,
  ];
  if (netid !== "tcp" && netid !== "udp") throw new Error(`unexpected netid ${netid} in ss line: ${line}`);

  let state: KernelState | null;
  if (netid === "tcp") {
    const mapped = SS_TCP_STATES[ssState];
    if (!mapped) throw new Error(`unknown TCP state ${ssState} in ss line: ${line}`);
    state = mapped;
  } else {
    if (!SS_UDP_STATES.has(ssState)) throw new Error(`unexpected UDP state ${ssState} in ss line: ${line}`);
    state = null;
  }

  const local = parseSsAddress(localText);
  const remote = parseSsAddress(remoteText);
  if (local.family !== remote.family) throw new Error(`mixed address families in ss line: ${line}`);
  const family = local.family;
  const processes = parseSsProcesses(processText ?? "");
  const pids = [...new Set(processes.map((p) => p.pid))].sort((a, b) => a - b);

  return {
    protocol: netid,
    family,
    state,
    ssState,
    receiveQueue: Number(recvQ),
    sendQueue: Number(sendQ),
    localAddress: local.address,
    localPort: local.port,
    localInterface: local.interface,
    remoteAddress: remote.address,
    remotePort: remote.port,
    pids,
    processes,
  };
}

/** Parses the whole output of `ss -tuanpH` (blank lines ignored). */
export function parseSsOutput(text: string): SsEntry[] {
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map(parseSsLine);
}

/** Runs `ss -tuanpH` inside the namespace and parses it. */
export async function ssSnapshot(ns: Netns): Promise<SsEntry[]> {
  const result = await ns.exec(["ss", "-tuanpH"], { timeoutMs: 10_000 });
  if (result.code !== 0) throw new Error(`ss failed: ${describeRun(result)}`);
  return parseSsOutput(result.stdout);
}
