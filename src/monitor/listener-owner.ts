/**
 * The owner of an accepted socket that has none of its own. Once a short connection is gone, or
 * when the sensor saw it accepted on a listener older than the sensor, nothing names its process
 * but the listener on its local port: the best owner there is.
 */
import type { Endpoint } from "../model/endpoint.ts";

/** Listening TCP sockets that have a process, by local port. */
export type ListenerIndex = Map<number, Endpoint[]>;

export function listenersByPort(...sets: ReadonlyMap<string, Endpoint>[]): ListenerIndex {
  const index: ListenerIndex = new Map();
  for (const set of sets) {
    for (const ep of set.values()) {
      if (ep.protocol !== "tcp" || ep.state !== "LISTEN" || !ep.process) continue;
      const list = index.get(ep.localPort);
      if (list) list.push(ep);
      else index.set(ep.localPort, [ep]);
    }
  }
  return index;
}

/** The listener that accepted this TCP socket, as far as its addresses tell; null if none fits. */
export function listenerFor(ep: Endpoint, index: ListenerIndex): Endpoint | null {
  if (ep.protocol !== "tcp") return null;
  const namespace = ep.namespace?.inode ?? null;
  for (const l of index.get(ep.localPort) ?? []) {
    // Another namespace's listener on the same port never accepted this socket.
    if ((l.namespace?.inode ?? null) !== namespace) continue;
    if (l.localAddress === ep.localAddress || l.localAddress === "0.0.0.0" || l.localAddress === "::") return l;
  }
  return null;
}
