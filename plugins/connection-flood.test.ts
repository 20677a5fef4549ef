/**
 * connection-flood through the compiled executable over flood.ndjson (recorded by
 * make-flood-events.py: "flooder" opens 15 connections within about 0.6 s, pauses 2.5 s and
 * opens 15 more; "calm" opens 5 over 1.2 s; python3 accepts them all), and synthetic events for
 * the edges. Needs dist/sockwarden.
 */
import { afterAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import path from "node:path";
import { EVENTS_DIR, alertLine, options, rulesTest, syntheticFile, type EventSpec } from "../test/fixtures/rules/rules-cli.ts";

const FILE = path.join(EVENTS_DIR, "flood.ndjson");
const RULE = "connection-flood";
const flood = (who: string, n: number, span: string, max: number, seconds: number, tail = "", severity = "warning") =>
  alertLine(RULE, `connection flood: ${who} opened ${n} connections in ${span} s (more than ${max} within ${seconds} s), latest to ${tail}`, severity);

describe("connection-flood", () => {
  it("stays quiet under the defaults (more than 30 within 10 s)", () => {
    const run = rulesTest([RULE], FILE);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.lines).toEqual([]);
  });

  it("alerts once per window and folds the rest into the next alert", () => {
    const run = rulesTest([RULE], FILE, options({ [RULE]: { maxConnections: 10, seconds: 2 } }));
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.lines).toEqual([
      flood("flooder (pid 7509)", 11, "0.4", 10, 2, "127.0.0.1:7000"),
      flood("flooder (pid 7509)", 11, "0.4", 10, 2, "127.0.0.1:7000; 4 more since the last alert"),
    ]);
  });

  it("a window longer than the pause: one alert for all 30", () => {
    const run = rulesTest([RULE], FILE, options({ [RULE]: { maxConnections: 10, seconds: 10, severity: "critical" } }));
    expect(run.lines).toEqual([flood("flooder (pid 7509)", 11, "0.4", 10, 10, "127.0.0.1:7000", "critical")]);
  });

  it("counts the accepting side with countInbound; ignoreProcesses", () => {
    const run = rulesTest([RULE], FILE, options({ [RULE]: { maxConnections: 29, seconds: 10, countInbound: true } }));
    expect(run.lines).toHaveLength(2);
    expect(JSON.parse(run.lines[0]!).reason).toMatch(/^connection flood: python3 \(pid 7501\) opened 30 connections in /);
    expect(JSON.parse(run.lines[1]!).reason).toMatch(/^connection flood: flooder \(pid 7509\) opened 30 connections in 3\.\d s /);
    const quiet = rulesTest([RULE], FILE, options({ [RULE]: { maxConnections: 4, ignoreProcesses: ["flood*", "calm"] } }));
    expect(quiet.lines).toEqual([]);
  });

  it("reports options it cannot use, at the line of the plugin that refuses them", () => {
    const source = readFileSync(path.join(import.meta.dirname, `${RULE}.ts`), "utf8").split("\n");
    const line = source.findIndex((l) => l.includes("maxConnections must be")) + 1;
    const column = source[line - 1]!.indexOf("RangeError(") + 1;
    const run = rulesTest([RULE], FILE, options({ [RULE]: { maxConnections: 0 } }));
    expect(run.code).toBe(1);
    expect(run.lines).toEqual([]);
    expect(run.stderr).toBe(`rule ${RULE} (plugin:${RULE}:${line}:${column}): RangeError: maxConnections must be a whole number from 1, not 0\n`);
  });

  describe("edges", () => {
    const specs: EventSpec[] = [];
    // PID 50 opens 3 connections, exits, and a new process gets PID 50 and opens 2: two processes.
    for (let i = 0; i < 3; i++) specs.push({ type: "opened", at: i * 0.1, local: `10.0.0.1:${41000 + i}`, remote: "10.0.0.9:80", process: { pid: 50, name: "old", startTime: "2026-01-01T00:00:00.000Z" } });
    for (let i = 0; i < 2; i++) specs.push({ type: "opened", at: 0.5 + i * 0.1, local: `10.0.0.1:${42000 + i}`, remote: "10.0.0.9:80", process: { pid: 50, name: "new", startTime: "2026-01-01T00:00:00.400Z" } });
    // Unknown owners are not counted; UDP connected sockets are connections.
    for (let i = 0; i < 4; i++) specs.push({ type: "opened", at: 1 + i * 0.1, local: `10.0.0.1:${43000 + i}`, remote: "10.0.0.9:80", process: null });
    for (let i = 0; i < 3; i++) specs.push({ type: "opened", at: 2 + i * 0.1, protocol: "udp", local: `10.0.0.1:${44000 + i}`, remote: "10.0.0.9:53", process: { pid: 60, name: "resolver" } });
    const f = syntheticFile(specs);
    afterAll(() => f.cleanup());

    it("tells processes apart by start time, skips unknown owners, counts UDP", () => {
      const run = rulesTest([RULE], f.file, options({ [RULE]: { maxConnections: 2, seconds: 5 } }));
      expect(run.stderr).toBe("");
      expect(run.lines).toEqual([
        flood("old (pid 50)", 3, "0.2", 2, 5, "10.0.0.9:80"),
        flood("resolver (pid 60)", 3, "0.2", 2, 5, "10.0.0.9:53"),
      ]);
    });
  });
});
