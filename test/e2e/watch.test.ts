/**
 * `sockwarden watch --ndjson` against real connections in a private namespace: the exact event
 * sequence of one connection's life, and short connections that live between two refreshes.
 * Both are what polling sees (snapshots and destroy notices): the watchers run with
 * `--sensor poll`; the sensor has its own tests (watch-sensor, watch-resync).
 *
 * Needs root (network namespace) and a built dist/sockwarden.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fileURLToPath } from "node:url";
import { BackgroundProcess, Netns, requireRoot } from "./helpers/netns.ts";
import { EXECUTABLE, requireExecutable } from "./helpers/sockwarden.ts";

const STEPS = fileURLToPath(new URL("./helpers/watch-steps.py", import.meta.url));
let ns: Netns | undefined;

beforeAll(async () => {
  requireRoot();
  requireExecutable();
  ns = await Netns.create("w");
});

afterAll(async () => {
  await ns?.dispose();
});

interface WatchEvent {
  type: string;
  seq: number;
  time: string;
  protocol: string;
  state: string | null;
  previousState?: string | null;
  localPort: number;
  remotePort: number;
  shortLived?: boolean;
  process: { pid: number; name: string } | null;
}

/**
 * Collects NDJSON events from a running watcher until `until` says enough; throws, with what it
 * has and the watcher's stderr, when time runs out first.
 */
async function collect(watcher: BackgroundProcess, until: (events: WatchEvent[]) => boolean, timeoutMs: number, into: WatchEvent[]): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!until(into)) {
    const left = deadline - performance.now();
    let line: string;
    try {
      line = await watcher.nextLine(Math.max(1, left));
    } catch (err) {
      throw new Error(`${(err as Error).message}\nevents so far: ${into.map((e) => `${e.type} ${e.localPort}>${e.remotePort} ${e.state}`).join("; ")}`);
    }
    into.push(JSON.parse(line) as WatchEvent);
  }
}

/**
 * Starts `watch --initial` on a port where the driver already listens: the listener's opened
 * event (from the first snapshot) says the watcher is ready; its destroy notices are open before.
 */
async function startWatcher(driver: BackgroundProcess, port: number, args: string[], into: WatchEvent[]): Promise<BackgroundProcess> {
  await step(driver, "listen");
  const watcher = ns!.spawn([EXECUTABLE, "watch", "--sensor", "poll", "--initial", "-a", "-t", "--ndjson", "--port", String(port), "--duration", "120", ...args]);
  await collect(watcher, (e) => e.length >= 1, 30_000, into);
  return watcher;
}

async function step(driver: BackgroundProcess, what: string): Promise<string> {
  driver.child.stdin!.write(`${what}\n`);
  const line = await driver.nextLine(10_000);
  expect(line.startsWith(`ok ${what.split(" ")[0]}`), line).toBe(true);
  return line;
}

describe("watch --ndjson", { timeout: 120_000 }, () => {
  it("reports one connection's life as an exact event sequence", async () => {
    const port = 7500;
    const driver = ns!.spawn(["/usr/bin/python3", STEPS, String(port)]);
    const events: WatchEvent[] = [];
    let watcher: BackgroundProcess | undefined;
    try {
      watcher = await startWatcher(driver, port, ["--interval", "0.2", "--events", "opened,closed,state-changed"], events);
      let client = 0;
      const waitFor = (n: number) => collect(watcher!, (e) => e.length >= n, 20_000, events);
      const connected = await step(driver, "connect");
      client = JSON.parse(connected.split(" ").slice(2).join(" ")).client;
      await waitFor(3);
      await step(driver, "server-shutdown");
      await waitFor(5);
      await step(driver, "client-close");
      await waitFor(7);
      await step(driver, "stop-listening");
      await waitFor(8);
      driver.child.stdin!.write("quit\n");
      // Nothing more comes: read the rest once the watcher has stopped.
      expect(await watcher.terminate(), watcher.stderr).toBe(true);
      for (const line of watcher.remainingLines()) events.push(JSON.parse(line) as WatchEvent);
      const summary = events.map((e) => `${e.type} ${e.localPort}>${e.remotePort === client ? "C" : e.remotePort === port ? "S" : e.remotePort} ${e.previousState ? `${e.previousState}->` : ""}${e.state}`);
      expect(summary).toEqual([
        `opened ${port}>0 LISTEN`,
        `opened ${port}>C ESTABLISHED`,
        `opened ${client}>S ESTABLISHED`,
        `state-changed ${port}>C ESTABLISHED->FIN_WAIT2`,
        `state-changed ${client}>S ESTABLISHED->CLOSE_WAIT`,
        `state-changed ${port}>C FIN_WAIT2->TIME_WAIT`,
        `closed ${client}>S CLOSE_WAIT`,
        `closed ${port}>0 LISTEN`,
      ]);
      // Numbered in order, times never going back, owners known for the sockets a process holds.
      expect(events.map((e) => e.seq)).toEqual([...events.map((e) => e.seq)].sort((a, b) => a - b));
      for (let i = 1; i < events.length; i++) expect(Date.parse(events[i]!.time)).toBeGreaterThanOrEqual(Date.parse(events[i - 1]!.time));
      expect(events[0]!.process?.pid).toBe(driver.pid);
      expect(events[0]!.process?.name).toBe("python3");
    } finally {
      await driver.stop();
      await watcher?.stop();
    }
  });

  it("reports every one of 200 connections that live a few milliseconds between two refreshes", async () => {
    const port = 7600;
    const driver = ns!.spawn(["/usr/bin/python3", STEPS, String(port)]);
    const events: WatchEvent[] = [];
    let watcher: BackgroundProcess | undefined;
    try {
      watcher = await startWatcher(driver, port, ["--interval", "1"], events);
      const burst = await step(driver, "burst 200");
      const clients: number[] = JSON.parse(burst.slice("ok burst ".length));
      expect(new Set(clients).size).toBe(200);
      const shortClosed = (e: WatchEvent[]) => e.filter((x) => x.type === "closed" && x.shortLived && x.localPort === port).length;
      await collect(watcher, (e) => shortClosed(e) >= 200, 30_000, events);
      driver.child.stdin!.write("quit\n");
      // Read the rest once the watcher has stopped, so that a duplicate would show.
      expect(await watcher.terminate(), watcher.stderr).toBe(true);
      for (const line of watcher.remainingLines()) events.push(JSON.parse(line) as WatchEvent);
      // The accepted side names the whole connection. (The kernel clears the peer port of a
      // client socket that closes with a reset before it announces it, so that side cannot.)
      const serverSide = events.filter((e) => e.shortLived && e.localPort === port);
      expect(serverSide.filter((e) => e.type === "opened")).toHaveLength(200);
      expect(serverSide.filter((e) => e.type === "closed")).toHaveLength(200);
      expect(new Set(serverSide.map((e) => e.remotePort))).toEqual(new Set(clients));
      // The accepted side is attributed to the process listening on the port.
      expect(serverSide.every((e) => e.process?.pid === driver.pid)).toBe(true);
      // Each short connection's opened comes right before its closed.
      for (const e of events.filter((x) => x.shortLived && x.type === "opened")) {
        const next = events.find((x) => x.seq === e.seq + 1);
        expect(next?.type).toBe("closed");
        expect(next?.localPort).toBe(e.localPort);
      }
    } finally {
      await driver.stop();
      await watcher?.stop();
    }
  });
});

describe("watch errors", () => {
  it("refuses a bad interval, count or event type with one line and exit 2", async () => {
    for (const args of [["--interval", "0.05"], ["--count", "0"], ["--events", "bogus"], ["--duration", "-1"]]) {
      const r = await ns!.exec([EXECUTABLE, "watch", ...args], { timeoutMs: 10_000 });
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it("--count stops by itself", async () => {
    const port = 7700;
    const driver = ns!.spawn(["/usr/bin/python3", STEPS, String(port)]);
    try {
      await step(driver, "listen");
      const r = await ns!.exec([EXECUTABLE, "watch", "-a", "--ndjson", "--initial", "--count", "1", "--port", String(port)], { timeoutMs: 10_000 });
      expect(r.code).toBe(0);
      const lines = r.stdout.trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(JSON.parse(lines[0]!)).toMatchObject({ type: "opened", seq: 1, state: "LISTEN", localPort: port });
    } finally {
      await driver.stop();
    }
  });
});
