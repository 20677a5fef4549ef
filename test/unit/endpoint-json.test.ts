import { describe, expect, test } from "vitest";
import type { Endpoint } from "../../src/model/endpoint.ts";
import { endpointJsonText, endpointToJson, jsonArrayChunks, ndjsonChunks } from "../../src/format/endpoint-json.ts";
import { endpoint as anEndpoint, processInfo } from "../support/endpoints.ts";

const proc = processInfo({
  pid: 42, name: 'we"ird\\name', path: "/usr/bin/x", cmdline: "x --flag\ttab", uid: 1000, user: "alice", startTime: "2026-01-01T00:00:00.000Z",
});

const endpoint = (over: Partial<Endpoint> = {}): Endpoint =>
  anEndpoint({
    family: 6, localAddress: "::1", localPort: 22, remoteAddress: "::ffff:10.0.0.1", remotePort: 40000, inode: 1234, uid: 1000, user: "alice",
    sendQueue: 5, bytesSent: 2 ** 40 + 3, bytesReceived: 10, packetsSent: 7, packetsReceived: 8, rttMs: 0.125, cookie: "99",
    process: proc, pids: [42, 43], ...over,
  });

describe("endpoint JSON", () => {
  test("direct text equals JSON.stringify of the documented shape", () => {
    for (const ep of [
      endpoint(),
      endpoint({ protocol: "udp", family: 4, state: null, process: null, pids: [], bytesSent: null, rttMs: null, cookie: null, user: null, uid: null }),
      endpoint({ createdAt: "2026-11-21T10:00:00.000Z", module: "Dnscache" }),
      endpoint({ namespace: { inode: 4026532000, name: "blue", container: { runtime: "docker", id: "abc123abc123", pod: null } }, process: { ...proc, unit: "nginx.service", container: null } }),
    ]) {
      expect(endpointJsonText(ep)).toBe(JSON.stringify(endpointToJson(ep)));
      expect(JSON.parse(endpointJsonText(ep))).toEqual(endpointToJson(ep));
    }
  });

  test("field names and order are the public ones", () => {
    expect(Object.keys(JSON.parse(endpointJsonText(endpoint())))).toEqual([
      "protocol", "family", "localAddress", "localPort", "remoteAddress", "remotePort", "state", "inode", "uid", "user",
      "bytesSent", "bytesReceived", "packetsSent", "packetsReceived", "process", "pids", "interfaceIndex",
      "receiveQueue", "sendQueue", "rttMs", "cookie", "namespace", "openedAt",
    ]);
    expect(Object.keys(JSON.parse(endpointJsonText(endpoint())).process)).toEqual([
      "pid", "name", "path", "cmdline", "uid", "user", "startTime", "ppid", "unit", "container",
    ]);
  });

  test("chunked array and NDJSON parse back to every endpoint", () => {
    const many = Array.from({ length: 2500 }, (_, i) => endpoint({ localPort: i }));
    const array = JSON.parse([...jsonArrayChunks(many, 1000)].join(""));
    expect(array).toHaveLength(2500);
    expect(array[2499].localPort).toBe(2499);
    expect(JSON.parse([...jsonArrayChunks([])].join(""))).toEqual([]);
    const lines = [...ndjsonChunks(many, 1000)].join("").trimEnd().split("\n");
    expect(lines).toHaveLength(2500);
    expect(JSON.parse(lines[1234]!).localPort).toBe(1234);
  });
});
