/**
 * The ss parser the end-to-end comparisons rely on, checked on lines recorded from
 * `ss -tuanpH` (iproute2 6.1) in a namespace running helpers/scenario.py. Needs no privileges.
 */

import { describe, expect, it } from "vitest";
import { parseSsAddress, parseSsLine, parseSsOutput, parseSsProcesses } from "./helpers/ss.ts";

// Recorded with `ip netns exec NS ss -tuanpH`; the column padding is ss's own.
const RECORDED = `udp UNCONN     0      0              0.0.0.0%lo:54993            0.0.0.0:*     users:(("python3",pid=5242,fd=11))                         
udp ESTAB      0      0               127.0.0.1:46152          127.0.0.1:32874 users:(("swpeer",pid=5246,fd=9))                           
udp UNCONN     0      0               127.0.0.1:32874            0.0.0.0:*     users:(("python3",pid=5242,fd=9))                          
udp UNCONN     0      0                       *:55951                  *:*     users:(("swpeer",pid=5246,fd=8))                           
udp UNCONN     0      0                   [::1]:57757               [::]:*     users:(("python3",pid=5242,fd=12))                         
udp ESTAB      0      0                   [::1]:37264              [::1]:57757 users:(("swpeer",pid=5246,fd=10))                          
tcp LISTEN     0      8                 0.0.0.0:42207            0.0.0.0:*     users:(("python3",pid=5245,fd=3),("python3",pid=5242,fd=3))
tcp LISTEN     0      16              127.0.0.1:57293            0.0.0.0:*     users:(("python3",pid=5242,fd=4))                          
tcp LISTEN     1      0               127.0.0.1:45079            0.0.0.0:*     users:(("python3",pid=5242,fd=8))                          
tcp ESTAB      0      0               127.0.0.1:55176          127.0.0.1:51313 users:(("python3",pid=5242,fd=18))                         
tcp ESTAB      0      0               127.0.0.1:45079          127.0.0.1:50886                                                            
tcp ESTAB      0      0               127.0.0.1:50886          127.0.0.1:45079 users:(("swpeer",pid=5246,fd=6))                           
tcp SYN-SENT   0      1               127.0.0.1:50892          127.0.0.1:45079 users:(("swpeer",pid=5246,fd=7))                           
tcp SYN-RECV   0      0               127.0.0.1:57293          192.0.2.1:40000                                                            
tcp ESTAB      0      0               127.0.0.1:57293          127.0.0.1:49422 users:(("python3",pid=5242,fd=13))                         
tcp ESTAB      200    0               127.0.0.1:49422          127.0.0.1:57293 users:(("swpeer",pid=5246,fd=3))                           
tcp CLOSE-WAIT 1      0               127.0.0.1:49438          127.0.0.1:57293 users:(("swpeer",pid=5246,fd=5))                           
tcp TIME-WAIT  0      0               127.0.0.1:49446          127.0.0.1:57293                                                            
tcp FIN-WAIT-2 0      0               127.0.0.1:57293          127.0.0.1:49438 users:(("python3",pid=5242,fd=16))                         
tcp LISTEN     0      16                      *:51313                  *:*     users:(("python3",pid=5242,fd=7))                          
tcp LISTEN     0      16                  [::1]:36839               [::]:*     users:(("python3",pid=5242,fd=6))                          
tcp ESTAB      0      0                   [::1]:39510              [::1]:36839 users:(("swpeer",pid=5246,fd=4))                           
tcp TIME-WAIT  0      0                   [::1]:39512              [::1]:36839                                                            
tcp ESTAB      0      0      [::ffff:127.0.0.1]:51313 [::ffff:127.0.0.1]:55176 users:(("python3",pid=5242,fd=19))                         
tcp ESTAB      0      0                   [::1]:36839              [::1]:39510 users:(("python3",pid=5242,fd=17))                         
`;

describe("parseSsOutput on a recorded scenario", () => {
  const entries = parseSsOutput(RECORDED);

  it("parses every line", () => {
    expect(entries).toHaveLength(25);
  });

  it("maps ss state names to kernel names, UDP to null", () => {
    const states = entries.map((e) => `${e.protocol}:${e.state}`);
    expect(new Set(states)).toEqual(
      new Set([
        "udp:null",
        "tcp:LISTEN",
        "tcp:ESTABLISHED",
        "tcp:SYN_SENT",
        "tcp:SYN_RECV",
        "tcp:CLOSE_WAIT",
        "tcp:TIME_WAIT",
        "tcp:FIN_WAIT2",
      ]),
    );
  });

  it("reads an interface-bound UDP socket", () => {
    expect(entries[0]).toMatchObject({
      protocol: "udp",
      family: 4,
      state: null,
      ssState: "UNCONN",
      localAddress: "0.0.0.0",
      localPort: 54993,
      localInterface: "lo",
      remoteAddress: "0.0.0.0",
      remotePort: 0,
      pids: [5242],
    });
  });

  it("reads a connected UDP socket as stateless", () => {
    expect(entries[1]).toMatchObject({
      protocol: "udp",
      state: null,
      ssState: "ESTAB",
      localAddress: "127.0.0.1",
      localPort: 46152,
      remoteAddress: "127.0.0.1",
      remotePort: 32874,
    });
  });

  it("reads * as the IPv6 any address", () => {
    expect(entries[3]).toMatchObject({
      family: 6,
      localAddress: "::",
      localPort: 55951,
      remoteAddress: "::",
      remotePort: 0,
    });
    expect(entries[19]).toMatchObject({ protocol: "tcp", state: "LISTEN", family: 6, localAddress: "::", localPort: 51313 });
  });

  it("strips brackets from IPv6 addresses", () => {
    expect(entries[4]).toMatchObject({ family: 6, localAddress: "::1", localPort: 57757, remoteAddress: "::", remotePort: 0 });
    expect(entries[23]).toMatchObject({
      family: 6,
      localAddress: "::ffff:127.0.0.1",
      localPort: 51313,
      remoteAddress: "::ffff:127.0.0.1",
      remotePort: 55176,
    });
  });

  it("collects every pid of a shared socket, sorted", () => {
    expect(entries[6]?.pids).toEqual([5242, 5245]);
    expect(entries[6]?.processes).toEqual([
      { name: "python3", pid: 5245, fd: 3 },
      { name: "python3", pid: 5242, fd: 3 },
    ]);
  });

  it("gives ownerless sockets no pids", () => {
    expect(entries[10]).toMatchObject({ state: "ESTABLISHED", localPort: 45079, pids: [], processes: [] });
    expect(entries[13]).toMatchObject({ state: "SYN_RECV", remoteAddress: "192.0.2.1", remotePort: 40000, pids: [] });
    expect(entries[17]).toMatchObject({ state: "TIME_WAIT", pids: [] });
  });

  it("reads the queues", () => {
    expect(entries[15]).toMatchObject({ receiveQueue: 200, sendQueue: 0 });
    expect(entries[8]).toMatchObject({ state: "LISTEN", receiveQueue: 1, sendQueue: 0 });
  });
});

describe("parseSsAddress", () => {
  it.each([
    ["127.0.0.1:80", { address: "127.0.0.1", family: 4, port: 80, interface: null }],
    ["0.0.0.0:*", { address: "0.0.0.0", family: 4, port: 0, interface: null }],
    ["[::]:*", { address: "::", family: 6, port: 0, interface: null }],
    ["*:*", { address: "::", family: 6, port: 0, interface: null, wildcard: true }],
    ["*:22", { address: "::", family: 6, port: 22, interface: null, wildcard: true }],
    ["[::1]:631", { address: "::1", family: 6, port: 631, interface: null, wildcard: false }],
    ["127.0.0.53%lo:53", { address: "127.0.0.53", family: 4, port: 53, interface: "lo" }],
    ["[fe80::5054:ff:fe12:3456]%eth0:546", { address: "fe80::5054:ff:fe12:3456", family: 6, port: 546, interface: "eth0" }],
    ["*%lo:5353", { address: "::", family: 6, port: 5353, interface: "lo" }],
    ["[2001:db8::1]:65535", { address: "2001:db8::1", family: 6, port: 65535, interface: null }],
  ])("%s", (text, expected) => {
    expect(parseSsAddress(text)).toMatchObject(expected);
  });

  it.each(["127.0.0.1", "::1:80", "[::1:80", "127.0.0.1:http", "127.0.0.1:70000", "localhost:80"])(
    "rejects %s",
    (text) => {
      expect(() => parseSsAddress(text)).toThrow();
    },
  );
});

describe("parseSsLine", () => {
  it.each([
    ["FIN-WAIT-1", "FIN_WAIT1"],
    ["LAST-ACK", "LAST_ACK"],
    ["CLOSING", "CLOSING"],
    ["UNCONN", "CLOSE"],
  ])("maps TCP %s to %s", (ssState, kernelState) => {
    const entry = parseSsLine(`tcp ${ssState} 0 0 10.0.0.1:5000 10.0.0.2:6000`);
    expect(entry.state).toBe(kernelState);
    expect(entry.pids).toEqual([]);
  });

  it("keeps a process name with spaces and parentheses", () => {
    const entry = parseSsLine(
      'tcp ESTAB 0 0 10.0.0.1:5000 10.0.0.2:6000 users:(("Web Content (x)",pid=77,fd=5),("Web Content (x)",pid=77,fd=9))',
    );
    expect(entry.processes.map((p) => p.name)).toEqual(["Web Content (x)", "Web Content (x)"]);
    expect(entry.pids).toEqual([77]);
  });

  it("rejects unknown states, protocols and mixed families", () => {
    expect(() => parseSsLine("tcp BOGUS 0 0 10.0.0.1:1 10.0.0.2:2")).toThrow(/unknown TCP state/);
    expect(() => parseSsLine("udp LISTEN 0 0 10.0.0.1:1 10.0.0.2:2")).toThrow(/UDP state/);
    expect(() => parseSsLine("raw UNCONN 0 0 10.0.0.1:1 10.0.0.2:2")).toThrow(/netid/);
    expect(() => parseSsLine("tcp ESTAB 0 0 10.0.0.1:1 [::1]:2")).toThrow(/mixed/);
    expect(() => parseSsLine("tcp ESTAB 0 0 10.0.0.1:1")).toThrow(/cannot parse/);
  });

  it("rejects a process column it cannot read", () => {
    expect(() => parseSsProcesses("users:(garbage)")).toThrow();
    expect(parseSsProcesses("")).toEqual([]);
  });
});
