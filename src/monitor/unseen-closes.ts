/**
 * With the sensor running a connection ends at its socket's CLOSE, which the sensor tells; the
 * TIME_WAIT socket an active close leaves (under the same cookie) is not the connection any more.
 * A dump that finds a known connection turned into that TIME_WAIT successor shows a CLOSE the
 * sensor never told: its records were lost without being counted (seen under load on a busy
 * 2-core machine: a server's FIN_WAIT1 told, its FIN_WAIT2 and CLOSE never read, its kernel
 * address taken by the next accepted socket). Such a change is told as the sensor would have
 * told the close: closed, in its last known state.
 */
import { compareEvents, type UnnumberedEvent } from "./events.ts";

export function closesUnseen(events: UnnumberedEvent[]): UnnumberedEvent[] {
  let changed = false;
  const out = events.map((e): UnnumberedEvent => {
    const ended = e.type === "state-changed" && e.endpoint.protocol === "tcp" && e.endpoint.state === "TIME_WAIT";
    if (!ended || !e.previousState || e.previousState === "TIME_WAIT") return e;
    changed = true;
    return { type: "closed", time: e.time, endpoint: { ...e.endpoint, state: e.previousState } };
  });
  return changed ? out.sort(compareEvents) : events;
}
