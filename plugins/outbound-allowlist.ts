import { defineRule, glob, inCidr, isPrivate, type Endpoint, type Process, type Protocol, type Selector } from "sockwarden";

// An outbound connection is one whose local port is not a port this host listens on. One that
// goes to a public address (not private, loopback, link-local, CGNAT or unique-local, nor in
// allowedNetworks) from a process not in allowedProcesses is alerted on, or closed, once.
// Configuring allowedProcesses replaces the default list.

interface Options {
  /** Process names or executable paths (globs) that may connect anywhere. */
  allowedProcesses: string[];
  /** Public networks (CIDRs) that anyone may connect to. */
  allowedNetworks: string[];
  /** "alert" reports; "close" closes the connection (and the close is what is reported). */
  mode: "alert" | "close";
  severity: "info" | "warning" | "critical";
  protocols: ("tcp" | "udp")[];
}

const DEFAULT_ALLOWED = [
  "systemd-resolved", "systemd-timesyncd", "chronyd", "ntpd", "unbound", "named",
  "apt", "apt-get", "http", "https", "unattended-upgr*", "dnf", "yum", "packagekitd", "snapd",
];

/** Not places a connection goes: unspecified, broadcast, multicast. */
const NOT_DESTINATIONS = ["0.0.0.0/32", "255.255.255.255/32", "224.0.0.0/4", "::/128", "ff00::/8"];

/** Listening ports, "tcp/443", with how many listening sockets each has. */
const listening = new Map<string, number>();
/** Connections already acted on (by cookie, else address pair); forgotten when they close. */
const handled = new Set<string>();
const MAX_HANDLED = 20_000;

let misconfigured = false;

/**
 * What the rule needs to see: the listeners of the protocols it watches (to tell the server's side
 * of a connection by its port) and their connections that may go to a public address.
 */
function selected(protocols: readonly string[]): Selector[] {
  const watched = protocols.filter((p): p is Protocol => p === "tcp" || p === "udp");
  const out: Selector[] = [{ protocols: watched, remote: "public" }];
  if (watched.includes("tcp")) out.push({ protocols: "tcp", states: "LISTEN" });
  if (watched.includes("udp")) out.push({ protocols: "udp", remotePorts: 0 });
  return out;
}

function isListener(ep: Endpoint): boolean {
  return ep.protocol === "tcp" ? ep.state === "LISTEN" : ep.remotePort === 0;
}

function trackListener(ep: Endpoint, delta: number): void {
  const key = `${ep.protocol}/${ep.localPort}`;
  const n = (listening.get(key) ?? 0) + delta;
  if (n > 0) listening.set(key, n);
  else listening.delete(key);
}

function connectionKey(ep: Endpoint): string {
  return ep.cookie ?? `${ep.protocol}|${ep.localAddress}|${ep.localPort}|${ep.remoteAddress}|${ep.remotePort}`;
}

function allowed(p: Process | null, patterns: readonly string[]): boolean {
  if (p === null) return false;
  const base = p.path === null ? null : p.path.slice(p.path.lastIndexOf("/") + 1);
  return patterns.some((g) => glob(g, p.name) || (p.path !== null && glob(g, p.path)) || (base !== null && glob(g, base)));
}

function isPublic(address: string, allowedNetworks: readonly string[]): boolean {
  if (isPrivate(address)) return false;
  return ![...NOT_DESTINATIONS, ...allowedNetworks].some((cidr) => inCidr(address, cidr));
}

export default defineRule<Options>({
  name: "outbound-allowlist",
  description: "Alert on (or close) connections to public addresses from processes not on the allowed list",
  on: ["opened", "state-changed", "closed"],
  options: { allowedProcesses: DEFAULT_ALLOWED, allowedNetworks: [], mode: "alert", severity: "warning", protocols: ["tcp"] },
  select: (o) => selected(o.protocols),
  start(endpoints, _act, ctx) {
    // Options it cannot use are reported once, here, and the rule then stands aside.
    misconfigured = true;
    const mode: string = ctx.options.mode;
    if (mode !== "alert" && mode !== "close") throw new RangeError(`mode must be "alert" or "close", not ${JSON.stringify(mode)}`);
    misconfigured = false;
    for (const ep of endpoints) if (isListener(ep)) trackListener(ep, 1);
  },
  handle(event, act, ctx) {
    if (misconfigured) return;
    const ep = event.endpoint;
    const o = ctx.options;
    if (isListener(ep)) {
      if (event.type !== "state-changed") trackListener(ep, event.type === "opened" ? 1 : -1);
      return;
    }
    if (event.type === "closed") {
      handled.delete(connectionKey(ep));
      return;
    }
    if (!o.protocols.includes(ep.protocol)) return;
    // A TCP connection counts once it is attempted or up; UDP once it is connected.
    if (ep.protocol === "tcp" && ep.state !== "SYN_SENT" && ep.state !== "ESTABLISHED") return;
    if (listening.has(`${ep.protocol}/${ep.localPort}`)) return;
    if (!isPublic(ep.remoteAddress, o.allowedNetworks) || allowed(ep.process, o.allowedProcesses)) return;
    const key = connectionKey(ep);
    if (handled.has(key)) return;
    if (handled.size >= MAX_HANDLED) handled.clear();
    handled.add(key);
    const who = ep.process ? `${ep.process.name} (pid ${ep.process.pid})` : "an unknown process";
    const remote = ep.family === 6 ? `[${ep.remoteAddress}]:${ep.remotePort}` : `${ep.remoteAddress}:${ep.remotePort}`;
    const reason = `${who} is not allowed to connect to public addresses (${ep.protocol} ${remote})`;
    if (o.mode === "close") act.close(ep, reason);
    else act.alert(reason, o.severity);
  },
});
