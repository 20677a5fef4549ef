import { defineRule, glob, isLoopback, type Endpoint, type Selector } from "sockwarden";

// A port counts as new when nothing listened on it (same protocol) when the rule started. Several
// sockets on one port (IPv4 and IPv6, SO_REUSEPORT workers) are one alert; a port that stops
// listening altogether and listens again later is alerted again.

interface Options {
  severity: "info" | "warning" | "critical";
  /** "tcp" listeners (LISTEN state); "udp" counts unconnected bound UDP sockets. */
  protocols: ("tcp" | "udp")[];
  /** Ports never reported. */
  ignorePorts: number[];
  /** Process names or paths (globs) never reported. */
  ignoreProcesses: string[];
  /** Leave out listeners bound to a loopback address only. */
  ignoreLoopback: boolean;
}

/** "tcp/8080" for every port that listened at start. */
const atStart = new Set<string>();
/** Sockets listening now on ports that did not listen at start, by port. */
const open = new Map<string, Set<string>>();

function isListener(ep: Endpoint): boolean {
  return ep.protocol === "tcp" ? ep.state === "LISTEN" : ep.remotePort === 0;
}

/** Listeners of the protocols watched, from the time they listen until they stop or close. */
function listeners(protocols: readonly string[]): Selector[] {
  const out: Selector[] = [];
  if (protocols.includes("tcp")) out.push({ protocols: "tcp", states: "LISTEN" });
  if (protocols.includes("udp")) out.push({ protocols: "udp", remotePorts: 0 });
  return out;
}

function portKey(ep: Endpoint): string {
  return `${ep.protocol}/${ep.localPort}`;
}

function socketKey(ep: Endpoint): string {
  return `${ep.localAddress}|${ep.inode}`;
}

function ignored(ep: Endpoint, o: Options): boolean {
  if (!o.protocols.includes(ep.protocol) || o.ignorePorts.includes(ep.localPort)) return true;
  if (o.ignoreLoopback && isLoopback(ep.localAddress)) return true;
  const p = ep.process;
  if (p === null) return false;
  const base = p.path === null ? null : p.path.slice(p.path.lastIndexOf("/") + 1);
  return o.ignoreProcesses.some((g) => glob(g, p.name) || (p.path !== null && glob(g, p.path)) || (base !== null && glob(g, base)));
}

function where(ep: Endpoint): string {
  const address = ep.family === 6 ? `[${ep.localAddress}]` : ep.localAddress;
  const who = ep.process ? `${ep.process.name} (pid ${ep.process.pid})` : "an unknown process";
  return `${ep.protocol} ${address}:${ep.localPort} by ${who}`;
}

export default defineRule<Options>({
  name: "new-listener",
  description: "Alert when a port starts listening that was not listening when the rule started",
  on: ["opened", "state-changed", "closed"],
  options: { severity: "warning", protocols: ["tcp"], ignorePorts: [], ignoreProcesses: [], ignoreLoopback: false },
  select: (o) => listeners(o.protocols),
  start(endpoints) {
    for (const ep of endpoints) if (isListener(ep)) atStart.add(portKey(ep));
  },
  handle(event, act, ctx) {
    const ep = event.endpoint;
    const port = portKey(ep);
    if (atStart.has(port)) return;
    if (event.type === "closed" || (event.type === "state-changed" && event.previousState === "LISTEN")) {
      const sockets = open.get(port);
      sockets?.delete(socketKey(ep));
      if (sockets?.size === 0) open.delete(port);
      return;
    }
    if (!isListener(ep)) return;
    let sockets = open.get(port);
    const first = sockets === undefined;
    if (!sockets) open.set(port, (sockets = new Set()));
    sockets.add(socketKey(ep));
    if (first && !ignored(ep, ctx.options)) {
      act.alert(`new listener: ${where(ep)}; port ${ep.localPort} was not listening at start`, ctx.options.severity);
    }
  },
});
