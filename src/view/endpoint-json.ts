/**
 * The JSON shape of an endpoint, shared by `list --json`, `watch --ndjson` and rule events.
 * Field names are part of the public interface: scripts rely on them.
 */
import type { Endpoint, ProcessInfo } from "../engine/types.ts";

export interface EndpointJson {
  protocol: Endpoint["protocol"];
  family: Endpoint["family"];
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  state: Endpoint["state"];
  inode: number;
  uid: number | null;
  user: string | null;
  bytesSent: number | null;
  bytesReceived: number | null;
  packetsSent: number | null;
  packetsReceived: number | null;
  process: ProcessInfo | null;
  pids: number[];
  interfaceIndex: number;
  receiveQueue: number | null;
  sendQueue: number | null;
  rttMs: number | null;
  cookie: string | null;
}

export function endpointToJson(ep: Endpoint): EndpointJson {
  return {
    protocol: ep.protocol,
    family: ep.family,
    localAddress: ep.localAddress,
    localPort: ep.localPort,
    remoteAddress: ep.remoteAddress,
    remotePort: ep.remotePort,
    state: ep.state,
    inode: ep.inode,
    uid: ep.uid,
    user: ep.user,
    bytesSent: ep.bytesSent,
    bytesReceived: ep.bytesReceived,
    packetsSent: ep.packetsSent,
    packetsReceived: ep.packetsReceived,
    process: ep.process
      ? {
          pid: ep.process.pid,
          name: ep.process.name,
          path: ep.process.path,
          cmdline: ep.process.cmdline,
          uid: ep.process.uid,
          user: ep.process.user,
          startTime: ep.process.startTime,
          ppid: ep.process.ppid,
        }
      : null,
    pids: ep.pids,
    interfaceIndex: ep.interfaceIndex,
    receiveQueue: ep.receiveQueue,
    sendQueue: ep.sendQueue,
    rttMs: ep.rttMs,
    cookie: ep.cookie,
  };
}

/** One JSON array; written in pieces so that 100k endpoints do not need one giant string. */
export function* jsonArrayChunks(endpoints: readonly Endpoint[], chunkSize = 2000): Generator<string> {
  if (endpoints.length === 0) {
    yield "[]\n";
    return;
  }
  for (let i = 0; i < endpoints.length; i += chunkSize) {
    const part = endpoints.slice(i, i + chunkSize).map((ep) => JSON.stringify(endpointToJson(ep)));
    yield (i === 0 ? "[\n" : ",\n") + part.join(",\n");
  }
  yield "\n]\n";
}

export function* ndjsonChunks(endpoints: readonly Endpoint[], chunkSize = 2000): Generator<string> {
  for (let i = 0; i < endpoints.length; i += chunkSize) {
    yield endpoints
      .slice(i, i + chunkSize)
      .map((ep) => JSON.stringify(endpointToJson(ep)) + "\n")
      .join("");
  }
}
