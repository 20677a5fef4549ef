/**
 * The JSON shape of an endpoint, shared by `list --json`, `watch --ndjson` and rule events.
 * Field names are part of the public interface: scripts rely on them.
 */
import type { Endpoint, NamespaceTag } from "../model/endpoint.ts";
import type { ProcessInfo } from "../model/process.ts";

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
  namespace?: NamespaceTag | null;
  /** When the socket was opened, as the Linux eBPF sensor saw it; null where unknown. */
  openedAt?: string | null;
  /** Only where the OS gives them (Windows). */
  createdAt?: string | null;
  module?: string | null;
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
          unit: ep.process.unit ?? null,
          container: ep.process.container ?? null,
        }
      : null,
    pids: ep.pids,
    interfaceIndex: ep.interfaceIndex,
    receiveQueue: ep.receiveQueue,
    sendQueue: ep.sendQueue,
    rttMs: ep.rttMs,
    cookie: ep.cookie,
    namespace: ep.namespace ?? null,
    openedAt: ep.openedAt ?? null,
    ...(ep.createdAt !== undefined ? { createdAt: ep.createdAt, module: ep.module ?? null } : {}),
  };
}

const processText = new WeakMap<ProcessInfo, string>();
const quoted = new Map<string, string>();

function quote(s: string | null): string {
  if (s === null) return "null";
  let q = quoted.get(s);
  if (q === undefined) {
    q = JSON.stringify(s);
    if (quoted.size < 10_000) quoted.set(s, q);
  }
  return q;
}

const num = (n: number | null) => (n === null ? "null" : String(n));

const namespaceTexts = new WeakMap<NamespaceTag, string>();
function namespaceText(ns: NamespaceTag): string {
  let t = namespaceTexts.get(ns);
  if (t === undefined) {
    t = JSON.stringify(ns);
    namespaceTexts.set(ns, t);
  }
  return t;
}

/**
 * The same text as JSON.stringify(endpointToJson(ep)), written directly: listing 100k endpoints
 * this way makes no intermediate objects, and each process is serialized once.
 */
export function endpointJsonText(ep: Endpoint): string {
  let proc = "null";
  if (ep.process) {
    const cached = processText.get(ep.process);
    if (cached !== undefined) proc = cached;
    else {
      proc = JSON.stringify(endpointToJson(ep).process);
      processText.set(ep.process, proc);
    }
  }
  return (
    `{"protocol":"${ep.protocol}","family":${ep.family},"localAddress":${quote(ep.localAddress)},` +
    `"localPort":${ep.localPort},"remoteAddress":${quote(ep.remoteAddress)},"remotePort":${ep.remotePort},` +
    `"state":${ep.state === null ? "null" : `"${ep.state}"`},"inode":${ep.inode},"uid":${num(ep.uid)},` +
    `"user":${quote(ep.user)},"bytesSent":${num(ep.bytesSent)},"bytesReceived":${num(ep.bytesReceived)},` +
    `"packetsSent":${num(ep.packetsSent)},"packetsReceived":${num(ep.packetsReceived)},"process":${proc},` +
    `"pids":[${ep.pids.join(",")}],"interfaceIndex":${ep.interfaceIndex},"receiveQueue":${num(ep.receiveQueue)},` +
    `"sendQueue":${num(ep.sendQueue)},"rttMs":${num(ep.rttMs)},"cookie":${quote(ep.cookie)},` +
    `"namespace":${ep.namespace ? namespaceText(ep.namespace) : "null"},"openedAt":${quote(ep.openedAt ?? null)}` +
    (ep.createdAt !== undefined ? `,"createdAt":${quote(ep.createdAt)},"module":${quote(ep.module ?? null)}}` : "}")
  );
}

/** One JSON array, produced in pieces so that 100k endpoints never make one giant string. */
export function* jsonArrayChunks(endpoints: readonly Endpoint[], chunkSize = 1000): Generator<string> {
  if (endpoints.length === 0) {
    yield "[]\n";
    return;
  }
  for (let i = 0; i < endpoints.length; i += chunkSize) {
    let part = i === 0 ? "[\n" : ",\n";
    const end = Math.min(endpoints.length, i + chunkSize);
    for (let j = i; j < end; j++) part += (j === i ? "" : ",\n") + endpointJsonText(endpoints[j]!);
    yield part;
  }
  yield "\n]\n";
}

export function* ndjsonChunks(endpoints: readonly Endpoint[], chunkSize = 1000): Generator<string> {
  for (let i = 0; i < endpoints.length; i += chunkSize) {
    let part = "";
    const end = Math.min(endpoints.length, i + chunkSize);
    for (let j = i; j < end; j++) part += endpointJsonText(endpoints[j]!) + "\n";
    yield part;
  }
}
