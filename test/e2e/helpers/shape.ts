/**
 * Checks that one JSON endpoint has the documented fields with the documented types, and that
 * its fields agree with each other (owner and pids, protocol and state, family and addresses).
 */

import { isIP } from "node:net";
import { expect } from "vitest";
import type { JsonEndpoint } from "./sockwarden.ts";

const TCP_STATES = [
  "ESTABLISHED",
  "SYN_SENT",
  "SYN_RECV",
  "FIN_WAIT1",
  "FIN_WAIT2",
  "TIME_WAIT",
  "CLOSE",
  "CLOSE_WAIT",
  "LAST_ACK",
  "LISTEN",
  "CLOSING",
];

export const ENDPOINT_FIELDS = [
  "protocol",
  "family",
  "localAddress",
  "localPort",
  "remoteAddress",
  "remotePort",
  "state",
  "inode",
  "uid",
  "user",
  "bytesSent",
  "bytesReceived",
  "packetsSent",
  "packetsReceived",
  "process",
  "pids",
  "interfaceIndex",
  "receiveQueue",
  "sendQueue",
  "rttMs",
  "cookie",
];

export const PROCESS_FIELDS = ["pid", "name", "path", "cmdline", "uid", "user", "startTime", "ppid"];

/** ISO-8601 date and time with seconds and an explicit offset (Z or ±hh:mm). */
export const ISO_8601 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/;

function isCount(value: unknown): boolean {
  return typeof value === "number" && Number.isInteger(value) && value >= 0;
}

function isPort(value: unknown): boolean {
  return isCount(value) && (value as number) <= 65535;
}

function nullOr(value: unknown, check: (v: unknown) => boolean): boolean {
  return value === null || check(value);
}

/** Asserts the shape of one endpoint; `where` names it in failure messages. */
export function checkEndpointShape(e: JsonEndpoint): void {
  const where = `${e.protocol} ${e.localAddress}:${e.localPort} -> ${e.remoteAddress}:${e.remotePort} ${e.state}`;
  expect(Object.keys(e), where).toEqual(expect.arrayContaining(ENDPOINT_FIELDS));
  expect(["tcp", "udp"], where).toContain(e.protocol);
  expect([4, 6], where).toContain(e.family);
  expect(isIP(e.localAddress), `${where}: localAddress`).toBe(e.family);
  expect(isIP(e.remoteAddress), `${where}: remoteAddress`).toBe(e.family);
  expect(isPort(e.localPort), `${where}: localPort`).toBe(true);
  expect(isPort(e.remotePort), `${where}: remotePort`).toBe(true);
  if (e.protocol === "udp") expect(e.state, where).toBeNull();
  else expect(TCP_STATES, where).toContain(e.state);
  expect(isCount(e.inode), `${where}: inode`).toBe(true);
  expect(nullOr(e.uid, isCount), `${where}: uid`).toBe(true);
  expect(nullOr(e.user, (v) => typeof v === "string" && v !== ""), `${where}: user`).toBe(true);
  for (const counter of ["bytesSent", "bytesReceived", "packetsSent", "packetsReceived", "receiveQueue", "sendQueue"] as const) {
    expect(nullOr(e[counter], isCount), `${where}: ${counter}`).toBe(true);
  }
  expect(nullOr(e.rttMs, (v) => typeof v === "number" && Number.isFinite(v) && v >= 0), `${where}: rttMs`).toBe(true);
  expect(nullOr(e.cookie, (v) => typeof v === "string" && /^\d+$/.test(v)), `${where}: cookie`).toBe(true);
  expect(isCount(e.interfaceIndex), `${where}: interfaceIndex`).toBe(true);

  expect(Array.isArray(e.pids), `${where}: pids`).toBe(true);
  for (const pid of e.pids) expect(Number.isInteger(pid) && pid > 0, `${where}: pid ${pid}`).toBe(true);
  expect(new Set(e.pids).size, `${where}: pids repeat`).toBe(e.pids.length);

  if (e.process === null) {
    expect(e.pids, `${where}: unowned but pids`).toEqual([]);
    return;
  }
  const p = e.process;
  expect(Object.keys(p), where).toEqual(expect.arrayContaining(PROCESS_FIELDS));
  expect(e.pids, `${where}: owner not among pids`).toContain(p.pid);
  expect(typeof p.name === "string" && p.name !== "", `${where}: process.name`).toBe(true);
  expect(nullOr(p.path, (v) => typeof v === "string" && v.startsWith("/")), `${where}: process.path`).toBe(true);
  expect(nullOr(p.cmdline, (v) => typeof v === "string"), `${where}: process.cmdline`).toBe(true);
  expect(nullOr(p.uid, isCount), `${where}: process.uid`).toBe(true);
  expect(nullOr(p.user, (v) => typeof v === "string" && v !== ""), `${where}: process.user`).toBe(true);
  expect(nullOr(p.startTime, (v) => typeof v === "string" && ISO_8601.test(v)), `${where}: process.startTime`).toBe(true);
  expect(nullOr(p.ppid, isCount), `${where}: process.ppid`).toBe(true);
}
