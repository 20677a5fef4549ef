/**
 * outbound-allowlist through the compiled executable over outbound.ndjson (recorded with
 * `watch --initial` by make-outbound-events.py: listeners on the public 93.184.216.34:443 and
 * the private 10.20.0.1:8443; "curl" connects to the public address twice and to the private one,
 * "http" and "unattended-upgr" to the public one, python3 connects a UDP socket to
 * 93.184.216.34:53), and synthetic events for the edges. Needs dist/sockwarden.
 */
import { afterAll, describe, expect, it } from "vitest";
import path from "node:path";
import { EVENTS_DIR, alertLine, closeLine, options, recorded, rulesTest, syntheticFile } from "../test/fixtures/rules/rules-cli.ts";

const FILE = path.join(EVENTS_DIR, "outbound.ndjson");
const RULE = "outbound-allowlist";
const events = recorded(FILE);
const reason = (who: string, where: string) => `${who} is not allowed to connect to public addresses (${where})`;
const CURL = "curl (pid 7533)";

describe("outbound-allowlist", () => {
  it("alerts on curl's two public connections; not the private one, allowed processes, or the server's side", () => {
    const run = rulesTest([RULE], FILE, ["--initial"]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.lines).toEqual([
      alertLine(RULE, reason(CURL, "tcp 93.184.216.34:443")),
      alertLine(RULE, reason(CURL, "tcp 93.184.216.34:443")),
    ]);
  });

  it("tells the server's side by its listening port also when the listeners come as events", () => {
    const run = rulesTest([RULE], FILE);
    expect(run.lines).toEqual([
      alertLine(RULE, reason(CURL, "tcp 93.184.216.34:443")),
      alertLine(RULE, reason(CURL, "tcp 93.184.216.34:443")),
    ]);
  });

  it("closes instead in close mode, UDP included when asked", () => {
    const run = rulesTest([RULE], FILE, ["--initial", ...options({ [RULE]: { mode: "close", protocols: ["tcp", "udp"] } })]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.lines).toEqual([
      closeLine(RULE, reason(CURL, "tcp 93.184.216.34:443"), events, 4),
      closeLine(RULE, reason("python3 (pid 7524)", "udp 93.184.216.34:53"), events, 11),
      closeLine(RULE, reason(CURL, "tcp 93.184.216.34:443"), events, 13),
    ]);
  });

  it("a configured list replaces the default; allowed networks; severity", () => {
    const mine = rulesTest([RULE], FILE, ["--initial", ...options({ [RULE]: { allowedProcesses: ["curl"], severity: "critical" } })]);
    expect(mine.lines).toEqual([
      alertLine(RULE, reason("http (pid 7534)", "tcp 93.184.216.34:443"), "critical"),
      alertLine(RULE, reason("unattended-upgr (pid 7535)", "tcp 93.184.216.34:443"), "critical"),
    ]);
    const nets = rulesTest([RULE], FILE, ["--initial", ...options({ [RULE]: { allowedNetworks: ["93.184.216.0/24"] } })]);
    expect(nets.lines).toEqual([]);
  });

  it("reports a mode it does not know, once, and stands aside", () => {
    const run = rulesTest([RULE], FILE, options({ [RULE]: { mode: "kill" } }));
    expect(run.code).toBe(1);
    expect(run.lines).toEqual([]);
    expect(run.stderr).toMatch(new RegExp(`^rule ${RULE} \\(plugin:${RULE}:\\d+:\\d+\\): RangeError: mode must be "alert" or "close", not "kill"\\n$`));
  });

  describe("edges", () => {
    const f = syntheticFile([
      // Attempted, then established: once.
      { type: "opened", at: 0, local: "10.0.0.5:50000", remote: "203.0.113.9:443", state: "SYN_SENT" },
      { type: "state-changed", at: 1, local: "10.0.0.5:50000", remote: "203.0.113.9:443", previousState: "SYN_SENT", cookie: "90001" },
      // Closed, and the same address pair again later (a new socket, no cookie): again.
      { type: "closed", at: 2, local: "10.0.0.5:50000", remote: "203.0.113.9:443", cookie: "90001" },
      { type: "opened", at: 3, local: "10.0.0.5:50000", remote: "203.0.113.9:443", cookie: null },
      // IPv6, IPv4-mapped, unknown owner.
      { type: "opened", at: 4, local: "[2001:db8::5]:50001", remote: "[2606:4700::1111]:443", process: null },
      { type: "opened", at: 5, local: "[::ffff:10.0.0.5]:50002", remote: "[::ffff:198.51.100.1]:80" },
      // Private, link-local, CGNAT, unique-local, multicast and an unconnected UDP socket: none.
      { type: "opened", at: 6, local: "10.0.0.5:50003", remote: "172.16.1.1:443" },
      { type: "opened", at: 6, local: "10.0.0.5:50004", remote: "169.254.169.254:80" },
      { type: "opened", at: 6, local: "10.0.0.5:50005", remote: "100.64.0.1:443" },
      { type: "opened", at: 6, local: "[fd00::5]:50006", remote: "[fd00::1]:443" },
      { type: "opened", at: 6, protocol: "udp", local: "10.0.0.5:5353", remote: "224.0.0.251:5353" },
      { type: "opened", at: 6, protocol: "udp", local: "0.0.0.0:68" },
      // Allowed by path glob.
      { type: "opened", at: 7, local: "10.0.0.5:50007", remote: "203.0.113.9:443", process: { pid: 31, name: "x", path: "/usr/lib/apt/methods/https" } },
    ]);
    afterAll(() => f.cleanup());

    it("once per connection, again for a new one; IPv6 and mapped addresses; not private or multicast", () => {
      const run = rulesTest([RULE], f.file, options({ [RULE]: { protocols: ["tcp", "udp"] } }));
      expect(run.stderr).toBe("");
      expect(run.lines).toEqual([
        alertLine(RULE, reason("client (pid 4242)", "tcp 203.0.113.9:443")),
        alertLine(RULE, reason("client (pid 4242)", "tcp 203.0.113.9:443")),
        alertLine(RULE, reason("an unknown process", "tcp [2606:4700::1111]:443")),
        alertLine(RULE, reason("client (pid 4242)", "tcp [::ffff:198.51.100.1]:80")),
      ]);
    });
  });
});
