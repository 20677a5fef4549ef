import { describe, expect, test } from "vitest";
import type { Endpoint } from "../../src/model/endpoint.ts";
import { globMatcher } from "../../src/text/glob.ts";
import { buildSelection, isConnected } from "../../src/filter/endpoint-filter.ts";
import { parseStates } from "../../src/filter/state-names.ts";
import { UsageError } from "../../src/errors.ts";
import { listener, namedProcess } from "../support/endpoints.ts";

const nginx = namedProcess(10, "nginx", { path: "/usr/sbin/nginx" });
const curl = namedProcess(20, "curl", { cmdline: "curl x", uid: 1000, user: "al" });

const ep = (o: Partial<Endpoint>): Endpoint => listener({ localPort: 80, cookie: null, process: nginx, pids: [10], ...o });

const all = [
  ep({}),
  ep({ localPort: 80, remoteAddress: "10.1.2.3", remotePort: 5555, state: "ESTABLISHED", inode: 2 }),
  ep({ family: 6, localAddress: "::1", localPort: 41000, remoteAddress: "::1", remotePort: 25, state: "SYN_SENT", process: curl, pids: [20], inode: 3 }),
  ep({ localPort: 41001, remoteAddress: "93.184.216.34", remotePort: 443, state: "TIME_WAIT", process: null, pids: [], inode: 0, uid: null }),
  ep({ protocol: "udp", state: null, localPort: 53, inode: 5 }),
  ep({ protocol: "udp", state: null, localPort: 40000, remoteAddress: "127.0.0.53", remotePort: 53, inode: 6, process: curl, pids: [20] }),
  ep({ protocol: "udp", family: 6, state: null, localAddress: "::", localPort: 5353, remoteAddress: "::", inode: 7, process: null, pids: [] }),
];

const pick = (o: Parameters<typeof buildSelection>[0]) => {
  const s = buildSelection(o);
  return all.filter(s.matches).map((e) => e.inode);
};

describe("selection", () => {
  test("default is connected TCP", () => {
    expect(pick({})).toEqual([2, 3, 0]);
  });
  test("a short connection known only from its end (state CLOSE, a peer) is a connection to the default selection", () => {
    const ended = ep({ localPort: 41002, remoteAddress: "10.1.2.3", remotePort: 443, state: "CLOSE", inode: 0, process: curl, pids: [20] });
    const unbound = ep({ localPort: 41003, remoteAddress: "0.0.0.0", remotePort: 0, state: "CLOSE", inode: 0 });
    const s = buildSelection({});
    expect(s.matches(ended)).toBe(false);
    expect(s.matchesEvent({ endpoint: ended, shortLived: true })).toBe(true);
    expect(s.matchesEvent({ endpoint: ended })).toBe(false);
    expect(s.matchesEvent({ endpoint: unbound, shortLived: true })).toBe(false);
    // Other choices still apply to it.
    expect(buildSelection({ port: ["25"] }).matchesEvent({ endpoint: ended, shortLived: true })).toBe(false);
    expect(buildSelection({ state: ["established"] }).matchesEvent({ endpoint: ended, shortLived: true })).toBe(false);
    expect(buildSelection({ state: ["closed"] }).matchesEvent({ endpoint: ended, shortLived: true })).toBe(true);
  });
  test("-a is everything", () => {
    expect(pick({ all: true })).toEqual([1, 2, 3, 0, 5, 6, 7]);
  });
  test("-u without -a shows connected UDP only", () => {
    expect(pick({ udp: true })).toEqual([6]);
    expect(pick({ udp: true, all: true })).toEqual([5, 6, 7]);
  });
  test("families", () => {
    expect(pick({ all: true, ipv6: true })).toEqual([3, 7]);
    expect(pick({ all: true, ipv4: true, ipv6: true })).toEqual([1, 2, 3, 0, 5, 6, 7]);
  });
  test("states, including groups, and they imply TCP", () => {
    expect(pick({ state: ["listen"] })).toEqual([1]);
    expect(pick({ state: ["established,syn-sent"] })).toEqual([2, 3]);
    expect(pick({ state: ["Time-Wait"] })).toEqual([0]);
    expect(pick({ state: ["synchronized"] })).toEqual([2, 0]);
  });
  test("ports match either end", () => {
    expect(pick({ all: true, port: ["25"] })).toEqual([3]);
    expect(pick({ all: true, port: ["https"] })).toEqual([0]);
    expect(pick({ all: true, port: ["50-100"] })).toEqual([1, 2, 5, 6]);
  });
  test("local and remote addresses, CIDRs and ports", () => {
    expect(pick({ all: true, remote: ["10.0.0.0/8"] })).toEqual([2]);
    expect(pick({ all: true, remote: ["::1"] })).toEqual([3]);
    expect(pick({ all: true, local: [":53"] })).toEqual([5]);
    expect(pick({ all: true, remote: ["127.0.0.53:53"] })).toEqual([6]);
  });
  test("process by PID (any holder) or by name glob", () => {
    expect(pick({ all: true, process: "20" })).toEqual([3, 6]);
    expect(pick({ all: true, process: "NGINX" })).toEqual([1, 2, 5]);
    expect(pick({ all: true, process: "cu*" })).toEqual([3, 6]);
    expect(pick({ all: true, process: "nomatch" })).toEqual([]);
  });
  test("a repeated --port, --local or --remote is one more choice, as in the comma form", () => {
    expect(pick({ all: true, port: ["25", "53"] })).toEqual(pick({ all: true, port: ["25,53"] }));
    expect(pick({ all: true, port: ["25", "53"] })).toEqual([3, 5, 6]);
    expect(pick({ all: true, local: [":53", "::1"] })).toEqual([3, 5]);
    expect(pick({ all: true, remote: ["10.0.0.0/8", "::1"] })).toEqual([2, 3]);
    // Different options still narrow each other.
    expect(pick({ all: true, port: ["25", "53"], local: ["::1"] })).toEqual([3]);
    expect(pick({ all: true, port: ["80", "443"], remote: ["93.184.216.34", "10.1.2.3"], local: ["127.0.0.1"] })).toEqual([2, 0]);
  });
  test("--hide-unowned", () => {
    expect(pick({ all: true, hideUnowned: true })).toEqual([1, 2, 3, 5, 6]);
  });
  test("bad input is a usage error naming the value", () => {
    expect(() => buildSelection({ state: ["establishd"] })).toThrow(UsageError);
    expect(() => buildSelection({ state: ["establishd"] })).toThrow(/unknown state 'establishd'/);
    expect(() => buildSelection({ port: ["70000"] })).toThrow(UsageError);
    expect(() => buildSelection({ local: ["10.0.0.0/33"] })).toThrow(UsageError);
    expect(() => buildSelection({ remote: ["300.1.1.1"] })).toThrow(UsageError);
    expect(() => buildSelection({ process: "0" })).toThrow(/bad PID/);
  });
});

describe("helpers", () => {
  test("state names and aliases", () => {
    expect([...parseStates(["estab", "FIN_WAIT1", "fin-wait-2", "closed", "listening"])]).toEqual([
      "ESTABLISHED", "FIN_WAIT1", "FIN_WAIT2", "CLOSE", "LISTEN",
    ]);
    expect(parseStates(["connected"]).has("LISTEN")).toBe(false);
    expect(parseStates(["connected"]).has("TIME_WAIT")).toBe(true);
  });
  test("globs are anchored and take regex characters literally", () => {
    expect(globMatcher("a.b")("axb")).toBe(false);
    expect(globMatcher("a?c")("abc")).toBe(true);
    expect(globMatcher("post*")("postgres")).toBe(true);
    expect(globMatcher("post*")("xpostgres")).toBe(false);
  });
  test("connected", () => {
    expect(isConnected(all[0]!)).toBe(false);
    expect(isConnected(all[3]!)).toBe(true);
    expect(isConnected(all[4]!)).toBe(false);
    expect(isConnected(all[5]!)).toBe(true);
  });
});
