/**
 * new-listener through the compiled executable over new-listener.ndjson (recorded with
 * `watch --initial` by make-new-listener-events.py: 2222/tcp and 5353/udp listen at start; later
 * 8080 on v4 and v6, [::1]:2222, 127.0.0.1:9090, 6000/udp; 8080 closes and "rogue" listens on it
 * again), and synthetic events for the edges. Needs dist/sockwarden.
 */
import { afterAll, describe, expect, it } from "vitest";
import path from "node:path";
import { EVENTS_DIR, alertLine, options, rulesTest, syntheticFile } from "../test/fixtures/rules/rules-cli.ts";

const FILE = path.join(EVENTS_DIR, "new-listener.ndjson");
const RULE = "new-listener";
const line = (what: string, port: number, severity = "warning") =>
  alertLine(RULE, `new listener: ${what}; port ${port} was not listening at start`, severity);

describe("new-listener", () => {
  it("alerts once per new port, again when it listens anew; not for ports listening at start", () => {
    const run = rulesTest([RULE], FILE, ["--initial"]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.lines).toEqual([
      line("tcp 0.0.0.0:8080 by python3 (pid 7448)", 8080),
      line("tcp 127.0.0.1:9090 by python3 (pid 7448)", 9090),
      line("tcp 0.0.0.0:8080 by rogue (pid 7491)", 8080),
    ]);
  });

  it("without the initial endpoints, the port that listened at start is new too", () => {
    const run = rulesTest([RULE], FILE);
    expect(run.code).toBe(0);
    expect(run.lines[0]).toBe(line("tcp 0.0.0.0:2222 by python3 (pid 7448)", 2222));
    expect(run.lines).toHaveLength(4);
  });

  it("options: UDP too, loopback left out, ignored ports and processes, severity", () => {
    const run = rulesTest([RULE], FILE, [
      "--initial",
      ...options({ [RULE]: { protocols: ["tcp", "udp"], ignoreLoopback: true, ignoreProcesses: ["rog*"], severity: "critical" } }),
    ]);
    expect(run.code).toBe(0);
    expect(run.lines).toEqual([
      line("tcp 0.0.0.0:8080 by python3 (pid 7448)", 8080, "critical"),
      line("udp 0.0.0.0:6000 by python3 (pid 7448)", 6000, "critical"),
    ]);
    const ports = rulesTest([RULE], FILE, ["--initial", ...options({ [RULE]: { ignorePorts: [8080, 9090] } })]);
    expect(ports.lines).toEqual([]);
  });

  describe("edges", () => {
    const f = syntheticFile([
      // A socket seen before it listens (state CLOSE) that then starts listening.
      { type: "opened", at: 0, local: "0.0.0.0:3000", state: "CLOSE" },
      { type: "state-changed", at: 1, local: "0.0.0.0:3000", state: "LISTEN", previousState: "CLOSE", inode: 1001 },
      // It stops listening, and listens again: alerted again.
      { type: "state-changed", at: 2, local: "0.0.0.0:3000", state: "CLOSE", previousState: "LISTEN", inode: 1001 },
      { type: "opened", at: 3, local: "[::]:3000", process: { pid: 9, name: "node", path: "/opt/node/bin/node" } },
      // No owner known; a connection on a new port is no listener.
      { type: "opened", at: 4, local: "0.0.0.0:4000", process: null },
      { type: "opened", at: 5, local: "10.0.0.1:5000", remote: "10.0.0.2:443" },
    ]);
    afterAll(() => f.cleanup());

    it("state changes into and out of LISTEN, IPv6, unknown owners", () => {
      const run = rulesTest([RULE], f.file);
      expect(run.stderr).toBe("");
      expect(run.lines).toEqual([
        line("tcp 0.0.0.0:3000 by client (pid 4242)", 3000),
        line("tcp [::]:3000 by node (pid 9)", 3000),
        line("tcp 0.0.0.0:4000 by an unknown process", 4000),
      ]);
    });

    it("ignoreProcesses matches the executable's path and its base name", () => {
      for (const pattern of ["/opt/*/node", "no?e"]) {
        const run = rulesTest([RULE], f.file, options({ [RULE]: { ignoreProcesses: [pattern, "client"] } }));
        expect(run.lines).toEqual([line("tcp 0.0.0.0:4000 by an unknown process", 4000)]);
      }
    });
  });
});
