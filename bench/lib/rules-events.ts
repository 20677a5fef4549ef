// Synthetic endpoint events for the rules benchmark: a deterministic stream that looks like what
// the monitor reports on a busy server. A pool of live sockets is kept; each step either opens a
// new one or moves a live one on (SYN_SENT -> ESTABLISHED, ESTABLISHED -> FIN_WAIT1 / CLOSE_WAIT /
// TIME_WAIT, a counters update, or closed). Every socket a `closed` event names was opened
// earlier in the stream, so the rule set's table of known endpoints stays the size of the pool.
//
// Outgoing TCP connections to port 25 come from mail servers (postfix's `smtp`, exim4, sendmail)
// and from other programs (python3, curl, perl, java): smtp-guard acts on the second kind when
// they are ESTABLISHED.
import type { Endpoint, TcpState } from "../../src/model/endpoint.ts";
import type { ProcessInfo } from "../../src/model/process.ts";
import type { EndpointEvent, EventType } from "../../src/monitor/events.ts";
import { endpoint as anEndpoint } from "../../test/support/endpoints.ts";

/** Small fast deterministic PRNG (mulberry32): the same seed gives the same stream. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface EventMix {
  total: number;
  byType: Record<EventType, number>;
  tcp: number;
  udp: number;
  ipv6: number;
  unowned: number;
  /** Events of TCP endpoints whose remote port is 25. */
  port25: number;
  /** ...of which the owning process is not a mail server. */
  port25NonMail: number;
  processes: number;
  /** Live sockets the pool holds at most (the size of the rule set's known-endpoint table). */
  pool: number;
}

const MAIL = new Set(["master", "smtp", "exim4", "sendmail"]);

interface Proc {
  info: ProcessInfo;
  weight: number;
}

function processes(): { general: Proc[]; byName: Map<string, ProcessInfo[]> } {
  const spec: [name: string, path: string, cmd: string, user: string, copies: number, weight: number][] = [
    ["nginx", "/usr/sbin/nginx", "nginx: worker process", "www-data", 4, 6],
    ["sshd", "/usr/sbin/sshd", "sshd: admin [priv]", "root", 2, 2],
    ["postgres", "/usr/lib/postgresql/15/bin/postgres", "postgres: app appdb 10.0.0.7(51234) idle", "postgres", 4, 4],
    ["redis-server", "/usr/bin/redis-server", "/usr/bin/redis-server 127.0.0.1:6379", "redis", 1, 2],
    ["node", "/usr/bin/node", "node /srv/api/server.js", "app", 3, 8],
    ["python3", "/usr/bin/python3.11", "python3 /opt/jobs/worker.py --queue default", "app", 3, 5],
    ["java", "/usr/lib/jvm/java-17-openjdk-amd64/bin/java", "java -Xmx2g -jar /opt/svc/app.jar", "svc", 2, 4],
    ["curl", "/usr/bin/curl", "curl -s https://example.org/health", "root", 2, 2],
    ["chrome", "/opt/google/chrome/chrome", "/opt/google/chrome/chrome --type=utility", "admin", 2, 3],
    ["systemd-resolve", "/lib/systemd/systemd-resolved", "/lib/systemd/systemd-resolved", "systemd-resolve", 1, 2],
    ["chronyd", "/usr/sbin/chronyd", "/usr/sbin/chronyd -F 1", "_chrony", 1, 1],
    ["containerd", "/usr/bin/containerd", "/usr/bin/containerd", "root", 1, 1],
    ["perl", "/usr/bin/perl", "perl /usr/local/bin/report.pl", "root", 1, 1],
    ["master", "/usr/lib/postfix/sbin/master", "/usr/lib/postfix/sbin/master -w", "root", 1, 0],
    ["smtp", "/usr/lib/postfix/sbin/smtp", "smtp -n smtp -t unix -u -c", "postfix", 3, 0],
    ["exim4", "/usr/sbin/exim4", "/usr/sbin/exim4 -bd -q30m", "Debian-exim", 1, 0],
    ["sendmail", "/usr/sbin/sendmail", "sendmail: MTA: accepting connections", "root", 1, 0],
  ];
  const general: Proc[] = [];
  const byName = new Map<string, ProcessInfo[]>();
  let pid = 700;
  for (const [name, path, cmdline, user, copies, weight] of spec) {
    for (let i = 0; i < copies; i++) {
      pid += 1 + ((pid * 7) % 13);
      const info: ProcessInfo = {
        pid, name, path, cmdline, uid: user === "root" ? 0 : 100 + (pid % 900), user,
        startTime: `2026-11-20T0${i % 10}:1${pid % 10}:0${pid % 7}.000Z`, ppid: 1,
      };
      if (weight > 0) general.push({ info, weight });
      const list = byName.get(name) ?? [];
      list.push(info);
      byName.set(name, list);
    }
  }
  return { general, byName };
}

function weighted<T>(items: readonly [T, number][], r: number): T {
  let total = 0;
  for (const [, w] of items) total += w;
  let x = r * total;
  for (const [item, w] of items) {
    x -= w;
    if (x < 0) return item;
  }
  return items[items.length - 1]![0];
}

interface Live {
  endpoint: Endpoint;
  /** Outgoing TCP connection (it can go through SYN_SENT). */
  client: boolean;
}

/** Remote service ports of outgoing TCP connections, with weights. */
const CLIENT_PORTS: [number, number][] = [
  [443, 40], [80, 12], [5432, 8], [6379, 6], [3306, 4], [8080, 5], [22, 3], [993, 2], [587, 2], [9200, 3], [25, 5],
];
const MAIL_SENDERS = ["smtp", "smtp", "smtp", "exim4", "sendmail", "master"];
const NON_MAIL_SENDERS = ["python3", "curl", "perl", "java"];

export const DEFAULT_SEED = 25;
export const DEFAULT_POOL = 4000;

/**
 * A stream of events, produced a chunk at a time so that a million of them never live at once
 * (the daemon does not hold them either, and a heap of hundreds of MiB of event objects would
 * slow the garbage collector for everything measured). The same seed gives the same events.
 * About two in five open a socket, a third close one, a quarter are state changes and a few are
 * counters updates; 89 % TCP, 20 % IPv6, 5 % unowned.
 */
export class EventStream {
  readonly mix: EventMix;
  /** Returns the next `count` events. */
  readonly next: (count: number) => EndpointEvent[];

  constructor(seed = DEFAULT_SEED, pool = DEFAULT_POOL) {
    const s = streamState(seed, pool);
    this.mix = s.mix;
    this.next = s.next;
  }
}

/** `count` events at once (for the profile, which replays the same batches several times). */
export function makeEvents(count: number, seed = DEFAULT_SEED, pool = DEFAULT_POOL): EndpointEvent[] {
  return new EventStream(seed, pool).next(count);
}

function streamState(seed: number, pool: number): { mix: EventMix; next: (count: number) => EndpointEvent[] } {
  const rand = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const { general, byName } = processes();
  const generalWeights = general.map((p) => [p.info, p.weight] as [ProcessInfo, number]);
  const one = (name: string): ProcessInfo => pick(byName.get(name)!);
  const server = (port: number): ProcessInfo =>
    port === 22 ? one("sshd") : port === 5432 ? one("postgres") : port === 6379 ? one("redis-server") : port === 25 ? one("master") : one("nginx");

  const live: Live[] = [];
  let events: EndpointEvent[] = [];
  let seq = 0;
  let time = Date.UTC(2026, 10, 21, 12, 0, 0);
  let cookie = 40_000_000;
  let inode = 3_100_000;
  let ephemeral = 32768;
  const nextEphemeral = (): number => {
    ephemeral = ephemeral >= 60999 ? 32768 : ephemeral + 1 + Math.floor(rand() * 3);
    return ephemeral;
  };
  const mix: EventMix = {
    total: 0, byType: { opened: 0, closed: 0, "state-changed": 0, counters: 0 },
    tcp: 0, udp: 0, ipv6: 0, unowned: 0, port25: 0, port25NonMail: 0, processes: 0, pool,
  };
  const seen = new Set<ProcessInfo>();

  const emit = (type: EventType, endpoint: Endpoint, extra?: Partial<EndpointEvent>): void => {
    seq++;
    time += Math.floor(rand() * 3);
    events.push({ type, seq, time, endpoint, ...extra });
    mix.byType[type]++;
    if (endpoint.protocol === "tcp") mix.tcp++;
    else mix.udp++;
    if (endpoint.family === 6) mix.ipv6++;
    if (!endpoint.process) mix.unowned++;
    else seen.add(endpoint.process);
    if (endpoint.protocol === "tcp" && endpoint.remotePort === 25) {
      mix.port25++;
      if (!endpoint.process || !MAIL.has(endpoint.process.name)) mix.port25NonMail++;
    }
  };

  const remote4 = (): string =>
    rand() < 0.5 ? `203.0.113.${1 + Math.floor(rand() * 254)}` : `10.${Math.floor(rand() * 4)}.${Math.floor(rand() * 256)}.${1 + Math.floor(rand() * 254)}`;
  const remote6 = (): string => `2001:db8:${(Math.floor(rand() * 0xffff)).toString(16)}::${(1 + Math.floor(rand() * 0xfffe)).toString(16)}`;

  const open = (): void => {
    const v6 = rand() < 0.2;
    const local = v6 ? "2001:db8:10::5" : "10.0.0.5";
    const kind = rand();
    let proc: ProcessInfo | null;
    let protocol: "tcp" | "udp" = "tcp";
    let state: TcpState | null;
    let localPort: number;
    let remoteAddress: string;
    let remotePort: number;
    let client = false;
    if (kind < 0.57) {
      // Outgoing TCP.
      remotePort = weighted(CLIENT_PORTS, rand());
      proc = remotePort === 25 ? one(rand() < 0.6 ? pick(MAIL_SENDERS) : pick(NON_MAIL_SENDERS)) : weighted(generalWeights, rand());
      localPort = nextEphemeral();
      remoteAddress = v6 ? remote6() : remote4();
      state = rand() < 0.4 ? "SYN_SENT" : "ESTABLISHED";
      client = true;
    } else if (kind < 0.8) {
      // Incoming TCP to a local service (port 25 here is mail in, not a concern of smtp-guard).
      localPort = weighted<number>([[443, 50], [80, 20], [22, 8], [5432, 12], [6379, 5], [25, 5]], rand());
      proc = server(localPort);
      remoteAddress = v6 ? remote6() : remote4();
      remotePort = nextEphemeral();
      state = rand() < 0.1 ? "SYN_RECV" : "ESTABLISHED";
    } else if (kind < 0.95) {
      // UDP: DNS, NTP, QUIC.
      protocol = "udp";
      remotePort = weighted<number>([[53, 6], [123, 1], [443, 3]], rand());
      proc = remotePort === 53 ? one("systemd-resolve") : remotePort === 123 ? one("chronyd") : one("chrome");
      localPort = nextEphemeral();
      remoteAddress = v6 ? remote6() : remote4();
      state = null;
    } else {
      // A listener coming and going.
      proc = weighted(generalWeights, rand());
      localPort = 8000 + Math.floor(rand() * 2000);
      remoteAddress = v6 ? "::" : "0.0.0.0";
      remotePort = 0;
      state = "LISTEN";
    }
    if (rand() < 0.05) proc = null;
    const tcp = protocol === "tcp";
    const endpoint = anEndpoint({
      protocol, family: v6 ? 6 : 4, localAddress: local, localPort, remoteAddress, remotePort, state,
      inode: ++inode, uid: proc?.uid ?? 0, user: proc?.user ?? "root",
      bytesSent: tcp ? Math.floor(rand() * 2000) : null, bytesReceived: tcp ? Math.floor(rand() * 8000) : null,
      packetsSent: tcp ? 1 + Math.floor(rand() * 5) : null, packetsReceived: tcp ? 1 + Math.floor(rand() * 5) : null,
      rttMs: tcp ? Math.round(rand() * 4000) / 100 : null, cookie: String(++cookie), process: proc, pids: proc ? [proc.pid] : [],
    });
    live.push({ endpoint, client });
    emit("opened", endpoint);
  };

  const advance = (): void => {
    const i = Math.floor(rand() * live.length);
    const item = live[i]!;
    const ep = item.endpoint;
    const close = (): void => {
      live[i] = live[live.length - 1]!;
      live.pop();
      emit("closed", ep);
    };
    if (ep.protocol === "udp" || ep.state === "LISTEN") return close();
    const r = rand();
    let next: TcpState | null = null;
    if (ep.state === "SYN_SENT" || ep.state === "SYN_RECV") next = r < 0.9 ? "ESTABLISHED" : null;
    else if (ep.state === "ESTABLISHED") {
      if (r < 0.12) {
        // Traffic since the last refresh.
        const delta = { sent: 200 + Math.floor(rand() * 50_000), received: 500 + Math.floor(rand() * 200_000) };
        const updated: Endpoint = {
          ...ep, bytesSent: (ep.bytesSent ?? 0) + delta.sent, bytesReceived: (ep.bytesReceived ?? 0) + delta.received,
          packetsSent: (ep.packetsSent ?? 0) + 3, packetsReceived: (ep.packetsReceived ?? 0) + 9,
        };
        item.endpoint = updated;
        emit("counters", updated, {
          counters: {
            bytesSent: delta.sent, bytesReceived: delta.received, packetsSent: 3, packetsReceived: 9, intervalMs: 1000,
            bytesSentPerSecond: delta.sent, bytesReceivedPerSecond: delta.received,
          },
        });
        return;
      }
      if (r < 0.55) next = item.client ? (rand() < 0.6 ? "TIME_WAIT" : "FIN_WAIT1") : "CLOSE_WAIT";
    } else if (ep.state === "FIN_WAIT1") next = r < 0.5 ? "TIME_WAIT" : null;
    if (next === null) return close();
    const updated: Endpoint = { ...ep, state: next };
    item.endpoint = updated;
    emit("state-changed", updated, { previousState: ep.state });
  };

  const next = (count: number): EndpointEvent[] => {
    events = [];
    while (events.length < count) {
      if (live.length < pool / 2 || (live.length < pool && rand() < 0.42)) open();
      else advance();
    }
    mix.total += events.length;
    mix.processes = seen.size;
    return events;
  };
  return { mix, next };
}
