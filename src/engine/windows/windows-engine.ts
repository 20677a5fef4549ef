/**
 * The Windows engine: iphlpapi's extended TCP and UDP tables (or a replayed recording of them)
 * joined with the process table into the same normalized endpoints the Linux engine produces.
 *
 * What Windows gives and does not, compared with Linux: no socket inode or cookie (inode is 0,
 * cookie null), no queue sizes or RTT; byte and packet counts per TCP connection only to an
 * elevated process (GetPerTcpConnectionEStats, after collection is enabled per connection);
 * a creation time per socket with the owner-module tables. Connections are closed with
 * SetTcpEntry(DELETE_TCB), which exists for IPv4 TCP only.
 */
import type { CloseMethod, DestroyResult, Snapshot, SnapshotRequest, SocketEngine } from "../types.ts";
import type { Endpoint, Family, Protocol } from "../../model/endpoint.ts";
import type { ProcessDetails } from "../../model/process.ts";
import { SockwardenError, UnsupportedError } from "../../errors.ts";
import { parseIP } from "../../net/address.ts";
import { koffi } from "../native/koffi-addon.ts";
import { NO_PIDS, bareEndpoint } from "../bare-endpoint.ts";
import {
  MIB_TCP_STATE_DELETE_TCB,
  TCP_CONNECTION_ESTATS_DATA,
  TCP_ESTATS_DATA_ROD_V0_LEN,
  TCP_ESTATS_DATA_RW_V0_LEN,
  decodeDataRod,
  decodeTable,
  encodeTcp6Row,
  encodeTcpRow,
  mibTcpState,
  rowBytes,
  tcpStateName,
  type RowLayout,
  type TableRow,
} from "./ip-table-codec.ts";
import { ERROR_ACCESS_DENIED, ERROR_NOT_FOUND, ERROR_NOT_SUPPORTED, ERROR_MR_MID_NOT_FOUND, NO_ERROR, iphlpapi } from "./iphlpapi.ts";
import { LiveTableSource, ReplayTableSource, tableRecorder, type TableSource } from "./table-source.ts";
import { ProcessTable, isElevated, type WindowsProcessDetails } from "./process-table.ts";
import { TCPIP_OWNER_MODULE_INFO_BASIC_LEN, decodeOwnerModuleBasicInfo } from "./process-codec.ts";
import { win32ErrorName } from "./win32-errors.ts";

export interface WindowsEngineOptions {
  /** "auto" (iphlpapi) or "replay"; the Linux sources (netlink, proc) do not exist here. */
  source?: string;
  replayFile?: string;
  /** Write every raw table read to this file (NDJSON). */
  recordFile?: string;
  /**
   * Look up each socket's owner module (GetOwnerModuleFrom*Entry: the service inside
   * svchost.exe). One call per new socket; off unless an output shows it.
   */
  modules?: boolean;
}

/**
 * An endpoint with what only Windows tables carry. The extra fields ride along on the record;
 * outputs that list fields by name leave them out.
 */
export interface WindowsEndpoint extends Endpoint {
  createdAt: string | null;
  module: string | null;
}

/** After SetTcpEntry, how often and how long to look for the connection before calling it open. */
const CLOSE_CHECKS = 5;
const CLOSE_CHECK_INTERVAL_MS = 40;
/** fe80::/10 as canonical text. */
const LINK_LOCAL = /^fe[89ab][0-9a-f]:/i;
/** States whose connections carry traffic worth counting. */
const COUNTED_STATES = new Set(["ESTABLISHED", "FIN_WAIT1", "FIN_WAIT2", "CLOSE_WAIT", "CLOSING", "LAST_ACK", "SYN_SENT", "SYN_RECV"]);

export class WindowsEngine implements SocketEngine {
  readonly name = "windows";
  private readonly source: TableSource;
  private readonly sourceName: string;
  private readonly finishRecording: (() => void) | null = null;
  private readonly processes = new ProcessTable();
  private elevated: boolean | null = null;
  /** Connections whose statistics collection this process has switched on. */
  private collecting = new Set<string>();
  /** Owner modules by socket, while the socket lives. */
  private modules = new Map<string, string | null>();
  private modulesSupported: boolean;

  constructor(options: WindowsEngineOptions = {}) {
    this.modulesSupported = options.modules === true;
    const kind = options.source ?? "auto";
    if (kind === "replay") {
      if (!options.replayFile) throw new SockwardenError("replay needs a recording file");
      this.source = new ReplayTableSource(options.replayFile);
      this.sourceName = "replay";
      return;
    }
    if (kind !== "auto" && kind !== "iphlpapi") {
      throw new UnsupportedError(`--source ${kind} exists on Linux only; Windows reads iphlpapi's tables`);
    }
    const recording = options.recordFile ? tableRecorder(options.recordFile) : null;
    this.source = new LiveTableSource(recording?.record);
    this.sourceName = "iphlpapi";
    this.finishRecording = recording ? recording.finish : null;
  }

  snapshot(request: SnapshotRequest): Snapshot {
    const endpoints: WindowsEndpoint[] = [];
    const notes: string[] = [];
    const live = this.sourceName !== "replay";
    const seenModules = new Map<string, string | null>();
    for (const protocol of ["tcp", "udp"] as const) {
      if (!request.protocols.has(protocol)) continue;
      for (const family of [4, 6] as const) {
        if (!request.families.has(family)) continue;
        const table = this.source.read(protocol, family);
        for (const row of decodeTable(table.bytes, table.layout)) {
          const ep = toEndpoint(row);
          if (this.modulesSupported && live && request.withProcesses && row.pid > 4 && table.layout.owningModuleInfo >= 0) {
            ep.module = this.moduleOf(table.layout, table.bytes, row, seenModules);
          }
          endpoints.push(ep);
        }
      }
    }
    this.modules = seenModules;
    const takenAt = Date.now();
    let unreadableProcesses = 0;
    if (live && request.withProcesses) unreadableProcesses = this.attachProcesses(endpoints, notes);
    if (live && request.protocols.has("tcp")) this.attachCounters(endpoints, notes);
    return { endpoints, takenAt, source: this.sourceName, notes, unreadableProcesses };
  }

  private attachProcesses(endpoints: WindowsEndpoint[], notes: string[]): number {
    this.processes.refresh();
    const unreadable = new Set<number>();
    for (const ep of endpoints) {
      const pid = ep.pids[0];
      if (pid === undefined) continue;
      const info = this.processes.info(pid);
      if (!info) continue;
      ep.process = info;
      ep.user = info.user;
      if (this.processes.unreadable(pid)) unreadable.add(pid);
    }
    if (unreadable.size > 0 && !this.isElevated()) {
      notes.push(
        `${unreadable.size} process(es) show only their name: opening other users' and system processes needs an elevated sockwarden (Run as administrator)`,
      );
    }
    return unreadable.size;
  }

  /**
   * Bytes and segments per TCP connection (GetPerTcpConnectionEStats). Windows counts only once
   * collection is switched on for a connection, and only for an elevated caller: counters start
   * when sockwarden first sees a connection, unless something switched them on earlier.
   */
  private attachCounters(endpoints: WindowsEndpoint[], notes: string[]): void {
    const counted = endpoints.filter((ep) => ep.protocol === "tcp" && ep.state !== null && COUNTED_STATES.has(ep.state));
    if (counted.length === 0) return;
    const api = iphlpapi();
    if (!api.hasConnectionStatistics) {
      notes.push("this system has no per-connection TCP statistics (GetPerTcpConnectionEStats): no byte or packet counts");
      return;
    }
    if (!this.isElevated()) {
      notes.push("byte and packet counts need an elevated sockwarden (Run as administrator): Windows gives them to administrators only");
      return;
    }
    const rw = new Uint8Array(TCP_ESTATS_DATA_RW_V0_LEN);
    const rod = new Uint8Array(TCP_ESTATS_DATA_ROD_V0_LEN);
    const still = new Set<string>();
    for (const ep of counted) {
      const row = connectionRow(ep);
      if (!row) continue;
      const key = connectionKey(ep);
      const get = ep.family === 4 ? api.getPerTcpConnectionEStats : api.getPerTcp6ConnectionEStats;
      if (!this.collecting.has(key)) {
        rw[0] = 0;
        if (get(row, TCP_CONNECTION_ESTATS_DATA, rw, null, null) === NO_ERROR && rw[0] === 0) {
          rw[0] = 1;
          const set = ep.family === 4 ? api.setPerTcpConnectionEStats : api.setPerTcp6ConnectionEStats;
          if (set(row, TCP_CONNECTION_ESTATS_DATA, rw) !== NO_ERROR) continue;
        }
      }
      still.add(key);
      rod.fill(0);
      if (get(row, TCP_CONNECTION_ESTATS_DATA, null, null, rod) !== NO_ERROR) continue;
      const c = decodeDataRod(rod);
      ep.bytesSent = c.bytesSent;
      ep.bytesReceived = c.bytesReceived;
      ep.packetsSent = c.packetsSent;
      ep.packetsReceived = c.packetsReceived;
    }
    this.collecting = still;
  }

  /** The owner module (TCPIP_OWNER_MODULE_BASIC_INFO's name), looked up once per socket. */
  private moduleOf(layout: RowLayout, table: Uint8Array, row: TableRow, seen: Map<string, string | null>): string | null {
    if (!this.modulesSupported) return null;
    const key = `${row.protocol}|${row.localAddress}|${row.localPort}|${row.remoteAddress}|${row.remotePort}|${row.pid}|${row.createdAt}`;
    if (this.modules.has(key)) {
      const known = this.modules.get(key) ?? null;
      seen.set(key, known);
      return known;
    }
    const k = koffi();
    const size = [TCPIP_OWNER_MODULE_INFO_BASIC_LEN];
    const block = k.alloc("uint8_t", size[0]!);
    let name: string | null = null;
    try {
      const kind = `${row.protocol}${row.family}` as "tcp4" | "tcp6" | "udp4" | "udp6";
      const rc = iphlpapi().getOwnerModule(kind, rowBytes(table, layout, row), block, size);
      if (rc === ERROR_NOT_SUPPORTED) this.modulesSupported = false;
      else if (rc === NO_ERROR) {
        name = decodeOwnerModuleBasicInfo(new Uint8Array(k.view(block, TCPIP_OWNER_MODULE_INFO_BASIC_LEN)), k.address(block)).name;
      }
    } catch {
      name = null;
    } finally {
      k.free(block);
    }
    seen.set(key, name);
    return name;
  }

  private isElevated(): boolean {
    if (this.elevated === null) this.elevated = isElevated();
    return this.elevated;
  }

  closePrivilegeProblem(method: CloseMethod = "auto"): string | null {
    if (method === "owner") return null;
    return this.isElevated() ? null : "closing connections needs an elevated sockwarden (Run as administrator)";
  }

  /**
   * Closes an IPv4 TCP connection with SetTcpEntry(DELETE_TCB): Windows resets it. There is no
   * such call for IPv6 or UDP. The table is read before (a connection already gone is "gone") and
   * after (a call that reports success but leaves the connection, as some emulations do, fails).
   */
  destroy(ep: Endpoint, method: CloseMethod = "auto"): DestroyResult {
    if (method === "owner") {
      return { outcome: "failed", errno: ERROR_NOT_SUPPORTED, reason: "Windows has no way to take a socket from its owning process" };
    }
    if (ep.protocol !== "tcp") {
      return { outcome: "failed", errno: ERROR_NOT_SUPPORTED, reason: "Windows offers no way to close a UDP socket from outside its process" };
    }
    if (ep.family === 6) {
      return {
        outcome: "failed",
        errno: ERROR_NOT_SUPPORTED,
        reason: "Windows offers no way to close IPv6 connections (SetTcpEntry takes IPv4 connections only)",
      };
    }
    if (this.sourceName === "replay") return { outcome: "failed", errno: ERROR_NOT_SUPPORTED, reason: "a replayed recording cannot be closed" };
    if (!this.present(ep)) return { outcome: "gone" };
    const row = connectionRow(ep, MIB_TCP_STATE_DELETE_TCB);
    if (!row) return { outcome: "failed", errno: ERROR_NOT_SUPPORTED, reason: `cannot encode ${ep.localAddress} -> ${ep.remoteAddress}` };
    const rc = iphlpapi().setTcpEntry(row);
    if (rc === NO_ERROR) {
      if (!this.presentAfter(ep)) return { outcome: "closed" };
      return { outcome: "failed", errno: rc, reason: "SetTcpEntry reported success but the connection is still open" };
    }
    if ((rc === ERROR_MR_MID_NOT_FOUND || rc === ERROR_NOT_FOUND) && !this.present(ep)) return { outcome: "gone" };
    if (rc === ERROR_ACCESS_DENIED) {
      return { outcome: "failed", errno: rc, reason: "ERROR_ACCESS_DENIED: closing connections needs an elevated sockwarden (Run as administrator)" };
    }
    return { outcome: "failed", errno: rc, reason: `SetTcpEntry failed: ${win32ErrorName(rc)}` };
  }

  /** Whether the connection is still listed after a short wait for the table to catch up. */
  private presentAfter(ep: Endpoint): boolean {
    for (let attempt = 0; attempt < CLOSE_CHECKS; attempt++) {
      if (!this.present(ep)) return false;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, CLOSE_CHECK_INTERVAL_MS);
    }
    return this.present(ep);
  }

  /** Whether the connection is in the TCP table now, in a state other than TIME_WAIT. */
  private present(ep: Endpoint): boolean {
    const table = this.source.read("tcp", ep.family);
    return decodeTable(table.bytes, table.layout).some(
      (r) =>
        r.localPort === ep.localPort &&
        r.remotePort === ep.remotePort &&
        r.localAddress === ep.localAddress &&
        r.remoteAddress === ep.remoteAddress &&
        tcpStateName(r.state) !== "TIME_WAIT" &&
        tcpStateName(r.state) !== "CLOSE",
    );
  }

  processDetails(pid: number): ProcessDetails | null {
    if (this.sourceName === "replay") return null;
    return this.processes.details(pid) satisfies WindowsProcessDetails | null;
  }

  close(): void {
    this.source.close();
    this.finishRecording?.();
  }
}

function toEndpoint(row: TableRow): WindowsEndpoint {
  return {
    ...bareEndpoint({
      protocol: row.protocol,
      family: row.family,
      localAddress: row.localAddress,
      localPort: row.localPort,
      remoteAddress: row.remoteAddress,
      remotePort: row.remotePort,
      state: row.protocol === "tcp" ? tcpStateName(row.state) : null,
      uid: null,
      user: null,
      // A scope id names an interface only for link-local addresses (others carry a zone level).
      interfaceIndex: row.family === 6 && LINK_LOCAL.test(row.localAddress) ? row.localScopeId : 0,
      // PID 0 is the idle process: TIME_WAIT connections and, under emulation, sockets of
      // programs outside it. Such endpoints are unowned.
      pids: row.pid === 0 ? NO_PIDS : [row.pid],
    }),
    createdAt: row.createdAt === null ? null : new Date(row.createdAt).toISOString(),
    module: null,
  };
}

function connectionKey(ep: Endpoint): string {
  return `${ep.family}|${ep.localAddress}|${ep.localPort}|${ep.remoteAddress}|${ep.remotePort}`;
}

/** The MIB_TCPROW / MIB_TCP6ROW naming a listed connection, in its listed state or `state`. */
function connectionRow(ep: Endpoint, state?: number): Uint8Array | null {
  const local = parseIP(ep.localAddress);
  const remote = parseIP(ep.remoteAddress);
  if (!local || !remote || local.family !== ep.family || remote.family !== ep.family) return null;
  const id = {
    state: state ?? mibTcpState(ep.state ?? "CLOSE"),
    local: local.bytes,
    localPort: ep.localPort,
    localScopeId: ep.interfaceIndex,
    remote: remote.bytes,
    remotePort: ep.remotePort,
    remoteScopeId: ep.interfaceIndex,
  };
  return ep.family === 4 ? encodeTcpRow(id) : encodeTcp6Row(id);
}

export type { Family, Protocol };
