/**
 * A socket the sensor announced without a cookie (its lookup came too late, or was another
 * socket's) is known by its addresses; the next dump names it by its cookie, and a diff by key
 * sees one connection close and another open. A cookieless connection closed and one with a
 * cookie opened on the same address pair are the same socket: at most a change of state.
 */
import { pairKey } from "./endpoint-key.ts";
import { compareEvents, type UnnumberedEvent } from "./events.ts";

/**
 * The diff's events with each such close and open joined: dropped, or made one state change.
 * `events` are in compareEvents order and so is the result. The endpoint of the open is the
 * table's own (the snapshot the monitor took): it gains what the sensor knew about the socket.
 */
export function rekeyed(events: UnnumberedEvent[]): UnnumberedEvent[] {
  const cookieless = new Map<string, UnnumberedEvent>();
  for (const e of events) if (e.type === "closed" && e.endpoint.cookie === null && e.endpoint.remotePort !== 0) cookieless.set(pairKey(e.endpoint), e);
  if (cookieless.size === 0) return events;
  const same = new Set<UnnumberedEvent>();
  const changes: UnnumberedEvent[] = [];
  for (const e of events) {
    const was = e.type === "opened" && e.endpoint.cookie !== null ? cookieless.get(pairKey(e.endpoint)) : undefined;
    if (!was || same.has(was)) continue;
    same.add(was);
    same.add(e);
    const ep = e.endpoint;
    // What the sensor knew and a dump cannot: when it opened, and who made it.
    if (!ep.openedAt && was.endpoint.openedAt) ep.openedAt = was.endpoint.openedAt;
    if (!ep.process && was.endpoint.process) {
      ep.process = was.endpoint.process;
      ep.pids = was.endpoint.pids;
    }
    if (ep.state !== was.endpoint.state) changes.push({ type: "state-changed", time: e.time, endpoint: ep, previousState: was.endpoint.state });
  }
  if (same.size === 0) return events;
  return inOrder(changes, events.filter((e) => !same.has(e)));
}

/**
 * Two lists in compareEvents order as one, the first's event first where two compare equal.
 * The changes come in the order of the opens they replace, which sort by the same time and
 * endpoint, so they are in order themselves: a merge keeps the whole in order without sorting
 * the refresh's events again.
 */
function inOrder(first: UnnumberedEvent[], second: UnnumberedEvent[]): UnnumberedEvent[] {
  if (first.length === 0) return second;
  const out: UnnumberedEvent[] = [];
  let i = 0;
  let j = 0;
  while (i < first.length && j < second.length) out.push(compareEvents(first[i]!, second[j]!) <= 0 ? first[i++]! : second[j++]!);
  while (i < first.length) out.push(first[i++]!);
  while (j < second.length) out.push(second[j++]!);
  return out;
}
