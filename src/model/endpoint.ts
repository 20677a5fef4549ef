/**
 * The model: one socket as every engine reports it and every layer reads it. Linux and Windows
 * code only translates the operating system's own tables into these shapes; nothing above
 * src/engine sees OS details. It imports only other files of src/model, so any layer may import it.
 */
import type { ContainerInfo, ProcessInfo } from "./process.ts";

export type Protocol = "tcp" | "udp";
export type Family = 4 | 6;

/** TCP states by their kernel names; UDP endpoints carry `null`. */
export const TCP_STATES = [
  "ESTABLISHED",
  "SYN_SENT",
  "SYN_RECV",
  "FIN_WAIT1",
  "FIN_WAIT2",
  "TIME_WAIT",
  "CLOSE",
  "CLOSE_WAIT",
  "LAST_ACK",
  "LISTEN",
  "CLOSING",
] as const;
export type TcpState = (typeof TCP_STATES)[number];

/** The network namespace an endpoint lives in. */
export interface NamespaceTag {
  /** Inode of the namespace (as in /proc/PID/ns/net). */
  inode: number;
  /** Its name under /run/netns (`ip netns`), when it has one. */
  name: string | null;
  /** The container of the namespace's processes, when they are in one. */
  container: ContainerInfo | null;
}

export interface Endpoint {
  protocol: Protocol;
  family: Family;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  /** Kernel TCP state name; null for UDP. */
  state: TcpState | null;
  /** Socket inode (0 for TIME_WAIT and request sockets, which have none). */
  inode: number;
  uid: number | null;
  user: string | null;
  /** Interface index the socket is bound to, 0 for none. */
  interfaceIndex: number;
  receiveQueue: number | null;
  sendQueue: number | null;
  bytesSent: number | null;
  bytesReceived: number | null;
  packetsSent: number | null;
  packetsReceived: number | null;
  /** Smoothed round-trip time in milliseconds (TCP only). */
  rttMs: number | null;
  /** Kernel socket cookie as a decimal string: stable identity while the socket lives. */
  cookie: string | null;
  /** The owning process, or null when none could be found (unowned). */
  process: ProcessInfo | null;
  /** Every PID that holds the socket open (a socket can be shared after fork). */
  pids: number[];
  /** The network namespace; set when listing several (--all-namespaces). */
  namespace?: NamespaceTag | null;
  /**
   * When the socket was opened, ISO-8601, from the kernel's clock at its first state change
   * (connect, listen, or its acceptance) as the Linux eBPF sensor saw it; null (or absent) for
   * sockets older than the sensor and where no sensor runs. Compare `createdAt`, which Windows
   * itself keeps for each socket.
   */
  openedAt?: string | null;
  /** When the socket was created, where the OS says (Windows owner-module tables), ISO-8601. */
  createdAt?: string | null;
  /** The module owning the socket (a service inside svchost.exe), where the OS says. */
  module?: string | null;
}

/** A socket's protocol and addresses, as a process holds it. */
export type SocketAddresses = Pick<Endpoint, "protocol" | "family" | "localAddress" | "localPort" | "remoteAddress" | "remotePort">;
