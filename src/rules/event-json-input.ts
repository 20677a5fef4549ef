/**
 * Reads events recorded by `watch --ndjson` back into events, for `rules test`. A line that is
 * not such an event is an error naming the line.
 */
import type { Endpoint, TcpState } from "../model/endpoint.ts";
import type { ProcessInfo } from "../model/process.ts";
import { TCP_STATES } from "../model/endpoint.ts";
import { EVENT_TYPES, type EndpointEvent, type EventType } from "../monitor/events.ts";
import { DecodeError } from "../errors.ts";

const STATES = new Set<string>(TCP_STATES);

export function parseEventLines(text: string, file: string): EndpointEvent[] {
  const out: EndpointEvent[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line) continue;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      throw new DecodeError(`${file}:${i + 1}: not a JSON line`);
    }
    try {
      out.push(eventFromJson(raw));
    } catch (err) {
      throw new DecodeError(`${file}:${i + 1}: ${(err as Error).message}`);
    }
  }
  return out;
}

function need<T>(ok: boolean, value: T, what: string): T {
  if (!ok) throw new Error(`${what} is missing or of the wrong type`);
  return value;
}

const str = (o: Record<string, unknown>, k: string) => need(typeof o[k] === "string", o[k] as string, k);
const num = (o: Record<string, unknown>, k: string) => need(typeof o[k] === "number" && Number.isFinite(o[k]), o[k] as number, k);
const numOrNull = (o: Record<string, unknown>, k: string) => (o[k] === null || o[k] === undefined ? null : num(o, k));
const strOrNull = (o: Record<string, unknown>, k: string) => (o[k] === null || o[k] === undefined ? null : str(o, k));

export function eventFromJson(raw: unknown): EndpointEvent {
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw new Error("an event must be a JSON object");
  const o = raw as Record<string, unknown>;
  const type = str(o, "type");
  if (!(EVENT_TYPES as readonly string[]).includes(type)) throw new Error(`unknown event type ${type}`);
  const time = typeof o.time === "string" ? Date.parse(o.time) : num(o, "time");
  if (!Number.isFinite(time)) throw new Error("time is not a date");
  const event: EndpointEvent = { type: type as EventType, seq: num(o, "seq"), time, endpoint: endpointFromJson(o) };
  if (type === "state-changed") event.previousState = stateOf(o.previousState);
  if (o.counters && typeof o.counters === "object") event.counters = o.counters as EndpointEvent["counters"];
  if (o.shortLived === true) event.shortLived = true;
  return event;
}

function stateOf(v: unknown): TcpState | null {
  if (v === null || v === undefined) return null;
  if (typeof v !== "string" || !STATES.has(v)) throw new Error(`unknown state ${String(v)}`);
  return v as TcpState;
}

export function endpointFromJson(o: Record<string, unknown>): Endpoint {
  const protocol = str(o, "protocol");
  if (protocol !== "tcp" && protocol !== "udp") throw new Error(`protocol must be tcp or udp`);
  const family = num(o, "family");
  if (family !== 4 && family !== 6) throw new Error("family must be 4 or 6");
  const p = o.process as Record<string, unknown> | null | undefined;
  let process: ProcessInfo | null = null;
  if (p && typeof p === "object") {
    process = {
      pid: num(p, "pid"), name: str(p, "name"), path: strOrNull(p, "path"), cmdline: strOrNull(p, "cmdline"),
      uid: numOrNull(p, "uid"), user: strOrNull(p, "user"), startTime: strOrNull(p, "startTime"), ppid: numOrNull(p, "ppid"),
      unit: strOrNull(p, "unit"),
      container: (p.container && typeof p.container === "object" ? p.container : null) as ProcessInfo["container"],
    };
  }
  const pids = Array.isArray(o.pids) ? o.pids.filter((x): x is number => typeof x === "number") : process ? [process.pid] : [];
  return {
    protocol, family, localAddress: str(o, "localAddress"), localPort: num(o, "localPort"),
    remoteAddress: str(o, "remoteAddress"), remotePort: num(o, "remotePort"), state: stateOf(o.state),
    inode: numOrNull(o, "inode") ?? 0, uid: numOrNull(o, "uid"), user: strOrNull(o, "user"),
    interfaceIndex: numOrNull(o, "interfaceIndex") ?? 0, receiveQueue: numOrNull(o, "receiveQueue"), sendQueue: numOrNull(o, "sendQueue"),
    bytesSent: numOrNull(o, "bytesSent"), bytesReceived: numOrNull(o, "bytesReceived"), packetsSent: numOrNull(o, "packetsSent"),
    packetsReceived: numOrNull(o, "packetsReceived"), rttMs: numOrNull(o, "rttMs"), cookie: strOrNull(o, "cookie"), process, pids,
    namespace: (o.namespace && typeof o.namespace === "object" ? o.namespace : null) as Endpoint["namespace"],
    openedAt: strOrNull(o, "openedAt"),
  };
}
