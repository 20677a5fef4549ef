// One connection holder (traffic.py hold) per benchmark namespace (helper.ts's holder, started inside it), and the TCP
// socket count of each namespace read from its holder's /proc/PID/net.
import { countTcpIn, holdConnections, type HeldConnections, type SocketCount } from "./helper.ts";

export interface Holder extends HeldConnections {
  netns: string;
}

export type TcpCount = SocketCount;

/** The holder inside `netns`, ready; it exits when its stdin closes or after lifetimeS. */
export async function startHolder(netns: string, connections: number, lifetimeS: number, readyTimeoutMs: number): Promise<Holder> {
  return { netns, ...(await holdConnections(connections, lifetimeS, readyTimeoutMs, netns)) };
}

/** TCP sockets of the namespace process `pid` lives in (/proc/PID/net is per namespace). */
export function countTcpOf(pid: number): Promise<TcpCount | null> {
  return countTcpIn(`/proc/${pid}/net`);
}
