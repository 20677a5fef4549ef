/**
 * The JSON shape of an event for `watch --ndjson` (and for rules and sinks later): the endpoint's
 * `list --json` fields at the top level, plus `type`, `seq`, `time` (ISO-8601) and, where they
 * apply, `previousState`, `counters` and `shortLived`.
 */
import type { EndpointEvent } from "../monitor/events.ts";
import { endpointToJson } from "../format/endpoint-json.ts";

export function eventToJson(e: EndpointEvent): Record<string, unknown> {
  const out: Record<string, unknown> = { type: e.type, seq: e.seq, time: new Date(e.time).toISOString() };
  Object.assign(out, endpointToJson(e.endpoint));
  if (e.type === "state-changed") out.previousState = e.previousState ?? null;
  if (e.counters) out.counters = e.counters;
  if (e.shortLived) out.shortLived = true;
  return out;
}

export function eventJsonLine(e: EndpointEvent): string {
  return JSON.stringify(eventToJson(e)) + "\n";
}
