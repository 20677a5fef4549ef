/**
 * Figures of a refresh's batch, apart from the daemon's flow: endpoints counted by protocol and
 * state for the gauges, and where a batch's time went for tracing.
 */
import type { Endpoint } from "../model/endpoint.ts";
import type { EndpointEvent } from "../monitor/events.ts";
import type { EventOrigin } from "../monitor/monitor-loop.ts";
import { trace } from "../trace.ts";

/** The values of sockwarden_endpoints. */
export function endpointsByState(endpoints: Iterable<Endpoint>): { labels: { protocol: string; state: string }; value: number }[] {
  // Counted by protocol, then state: no key is built per endpoint.
  const byProtocol = new Map<string, Map<string, number>>();
  for (const ep of endpoints) {
    let byState = byProtocol.get(ep.protocol);
    if (!byState) byProtocol.set(ep.protocol, (byState = new Map()));
    const state = ep.state ?? (ep.remotePort ? "CONNECTED" : "UNCONNECTED");
    byState.set(state, (byState.get(state) ?? 0) + 1);
  }
  const values: { labels: { protocol: string; state: string }; value: number }[] = [];
  for (const [protocol, byState] of byProtocol) {
    for (const [state, value] of byState) values.push({ labels: { protocol, state }, value });
  }
  return values;
}

/**
 * Where a batch's time went (SOCKWARDEN_TRACE): how old its oldest event was when the daemon got
 * it (from the kernel's change, for the sensor's), the rules' turn and the actions'.
 */
export function traceBatch(events: readonly EndpointEvent[], origin: EventOrigin, started: number, ruled: number, acted: number): void {
  let oldest = Infinity;
  for (const e of events) oldest = Math.min(oldest, e.time);
  const age = performance.timeOrigin + started - oldest;
  trace(`${events.length} event(s) from the ${origin}, the oldest ${age.toFixed(2)} ms old; rules ${(ruled - started).toFixed(2)} ms, actions ${(acted - ruled).toFixed(2)} ms`);
}
