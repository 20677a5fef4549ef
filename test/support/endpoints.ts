/**
 * Endpoints and processes as the engines produce them, for tests and benchmarks: the whole record
 * is spelled out here once, so a field added to the model gets its value in one place and a test
 * names only the fields it is about.
 */
import type { Endpoint } from "../../src/model/endpoint.ts";
import type { ProcessInfo } from "../../src/model/process.ts";

/** A root process with nothing read from /proc beyond its name: pid 10, `beacon`. */
export function processInfo(o: Partial<ProcessInfo> = {}): ProcessInfo {
  return { pid: 10, name: "beacon", path: null, cmdline: null, uid: 0, user: "root", startTime: null, ppid: 1, ...o };
}

/** A process whose path and command line were read: `/usr/bin/<name>`, run as `<name>`. */
export function namedProcess(pid: number, name: string, o: Partial<ProcessInfo> = {}): ProcessInfo {
  return processInfo({ pid, name, path: `/usr/bin/${name}`, cmdline: name, ...o });
}

/**
 * An established TCP connection on loopback, 127.0.0.1:1000 -> 127.0.0.1:2000, with counters,
 * owned by processInfo().
 */
export function endpoint(o: Partial<Endpoint> = {}): Endpoint {
  return {
    protocol: "tcp", family: 4, localAddress: "127.0.0.1", localPort: 1000, remoteAddress: "127.0.0.1", remotePort: 2000,
    state: "ESTABLISHED", inode: 1, uid: 0, user: "root", interfaceIndex: 0, receiveQueue: 0, sendQueue: 0,
    bytesSent: 0, bytesReceived: 0, packetsSent: 1, packetsReceived: 1, rttMs: 1, cookie: "1",
    process: processInfo(), pids: [10], ...o,
  };
}

/** No counters: what a listener, or an OS that does not count, reports. */
export const NO_COUNTERS = { bytesSent: null, bytesReceived: null, packetsSent: null, packetsReceived: null, rttMs: null } as const;

/** A TCP listener on 127.0.0.1:1000, without counters, owned by processInfo(). */
export function listener(o: Partial<Endpoint> = {}): Endpoint {
  return endpoint({ remoteAddress: "0.0.0.0", remotePort: 0, state: "LISTEN", ...NO_COUNTERS, ...o });
}
