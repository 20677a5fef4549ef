import { defineRule, glob, type Endpoint, type Process } from "sockwarden";

// Per process, the times of its last maxConnections + 1 connections: when the oldest of them is
// within the window, the process opened more than maxConnections in it. After an alert the
// process is quiet until the window has passed; connections in that time are counted and told
// in the next alert.

interface Options {
  /** More than this many connections within `seconds` is a flood. */
  maxConnections: number;
  seconds: number;
  severity: "info" | "warning" | "critical";
  /** Also count connections that other hosts opened to this process's listening ports. */
  countInbound: boolean;
  /** Process names or paths (globs) never reported. */
  ignoreProcesses: string[];
}

interface Tally {
  name: string;
  /** Event times (ms), oldest first, at most maxConnections + 1. */
  times: number[];
  /** No alert before this time. */
  quietUntil: number;
  /** Connections while quiet. */
  folded: number;
  last: number;
}

const tallies = new Map<string, Tally>();
/** Listening ports, "tcp/25", with how many listening sockets each has. */
const listening = new Map<string, number>();
let sinceSweep = 0;

function processKey(p: Process): string {
  return `${p.pid}@${p.startTime ?? ""}`;
}

let misconfigured = false;

function isListener(ep: Endpoint): boolean {
  return ep.protocol === "tcp" ? ep.state === "LISTEN" : ep.remotePort === 0;
}

function trackListener(ep: Endpoint, delta: number): void {
  const key = `${ep.protocol}/${ep.localPort}`;
  const n = (listening.get(key) ?? 0) + delta;
  if (n > 0) listening.set(key, n);
  else listening.delete(key);
}

function ignored(p: Process, patterns: readonly string[]): boolean {
  const base = p.path === null ? null : p.path.slice(p.path.lastIndexOf("/") + 1);
  return patterns.some((g) => glob(g, p.name) || (p.path !== null && glob(g, p.path)) || (base !== null && glob(g, base)));
}

/** Forgets processes that have been silent for a whole window. */
function sweep(now: number, windowMs: number): void {
  for (const [key, t] of tallies) if (now - t.last > windowMs && now >= t.quietUntil) tallies.delete(key);
}

export default defineRule<Options>({
  name: "connection-flood",
  description: "Alert when a process opens more than N connections within T seconds",
  on: ["opened", "closed"],
  options: { maxConnections: 30, seconds: 10, severity: "warning", countInbound: false, ignoreProcesses: [] },
  start(endpoints, _act, ctx) {
    // Options it cannot use are reported once, here, and the rule then stands aside.
    misconfigured = true;
    const { maxConnections, seconds } = ctx.options;
    if (!Number.isInteger(maxConnections) || maxConnections < 1) throw new RangeError(`maxConnections must be a whole number from 1, not ${maxConnections}`);
    if (!(seconds > 0)) throw new RangeError(`seconds must be above 0, not ${seconds}`);
    misconfigured = false;
    for (const ep of endpoints) if (isListener(ep)) trackListener(ep, 1);
  },
  handle(event, act, ctx) {
    if (misconfigured) return;
    const ep = event.endpoint;
    const o = ctx.options;
    if (isListener(ep)) {
      trackListener(ep, event.type === "opened" ? 1 : -1);
      return;
    }
    if (event.type !== "opened" || ep.process === null) return;
    if (!o.countInbound && listening.has(`${ep.protocol}/${ep.localPort}`)) return;
    if (ignored(ep.process, o.ignoreProcesses)) return;
    const windowMs = o.seconds * 1000;
    const now = event.time;
    if (++sinceSweep >= 1000) {
      sinceSweep = 0;
      sweep(now, windowMs);
    }
    const key = processKey(ep.process);
    let t = tallies.get(key);
    if (!t) tallies.set(key, (t = { name: ep.process.name, times: [], quietUntil: 0, folded: 0, last: now }));
    t.last = now;
    t.times.push(now);
    if (t.times.length > o.maxConnections + 1) t.times.shift();
    if (now < t.quietUntil) {
      t.folded++;
      return;
    }
    if (t.times.length > o.maxConnections && now - t.times[0]! <= windowMs) {
      const span = ((now - t.times[0]!) / 1000).toFixed(1);
      const more = t.folded > 0 ? `; ${t.folded} more since the last alert` : "";
      act.alert(
        `connection flood: ${t.name} (pid ${ep.process.pid}) opened ${t.times.length} connections in ${span} s ` +
          `(more than ${o.maxConnections} within ${o.seconds} s), latest to ${ep.remoteAddress}:${ep.remotePort}${more}`,
        o.severity,
      );
      t.quietUntil = now + windowMs;
      t.folded = 0;
    }
  },
});
