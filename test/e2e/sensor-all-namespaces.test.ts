/**
 * The eBPF sensor with `--all-namespaces`, run from the test's own namespace. The tracepoint
 * names no network namespace; the sensor reads each socket's own from the socket, completes a new
 * connection (cookie, inode) by a sock_diag lookup in that namespace and tags it with it. Two
 * namespaces made here hold the very same connection — same addresses, same ports — and the
 * watcher must report the one of each namespace with that namespace's inode and name and the
 * cookie and inode `ss` shows inside it.
 *
 * In the first case the listeners predate the watcher, so the accepted sides have no process the
 * sensor saw and their addresses are their twin's: their namespace alone places them, and they
 * must never be completed with the twin's cookie.
 *
 * The watcher refreshes once an hour: everything after its first look comes from the sensor.
 * Readiness is a sentinel connection its first look reports (the sensor starts before it).
 *
 * Needs root (network namespaces, setns, the sensor's capabilities) and a built dist/sockwarden.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { statSync } from "node:fs";
import { BackgroundProcess, Netns, describeRun, requireRoot } from "./helpers/netns.ts";
import { EXECUTABLE, requireExecutable } from "./helpers/sockwarden.ts";

const PYTHON = "/usr/bin/python3";
const HOST = "127.0.0.1";
const SERVER_PORT = 7820;
const CLIENT_PORT = 7821;
const SENTINEL_PORT = 7822;

/**
 * Listens on HOST:PORT; on each "connect" makes one connection to it from CLIENT_PORT (fixed, so
 * both namespaces have the same four-tuple; 0 for any) and accepts it. Says "ready", then each
 * client's port; holds the connections until stdin closes.
 */
const PAIR_PY = `
import socket, sys
port, client_port = int(sys.argv[1]), int(sys.argv[2])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("${HOST}", port)); srv.listen(8)
print("ready", flush=True)
held = []
for line in sys.stdin:
    if line.strip() != "connect": break
    c = socket.socket()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    c.bind(("${HOST}", client_port)); c.connect(("${HOST}", port))
    a, _ = srv.accept()
    held += [c, a]
    print(c.getsockname()[1], flush=True)
`;

interface WatchEvent {
  type: string;
  localPort: number;
  remotePort: number;
  inode: number;
  cookie: string | null;
  process: { pid: number } | null;
  namespace?: { inode: number; name: string | null } | null;
}

interface Place {
  ns: Netns;
  pair: BackgroundProcess;
  inode: number;
}

let places: Place[] = [];

beforeAll(async () => {
  requireRoot("The eBPF sensor's --all-namespaces test");
  requireExecutable();
  for (const label of ["sxa", "sxb"]) {
    const ns = await Netns.create(label);
    const pair = ns.spawn([PYTHON, "-c", PAIR_PY, String(SERVER_PORT), String(CLIENT_PORT)]);
    places.push({ ns, pair, inode: statSync(`/run/netns/${ns.name}`).ino });
    expect(await pair.nextLine(10_000)).toBe("ready");
  }
});

afterAll(async () => {
  for (const p of places) await p.ns.dispose();
  places = [];
});

/** The cookie (decimal, as sockwarden writes it) and inode `ss` shows for one socket inside `ns`. */
async function ssIdentity(ns: Netns, localPort: number, remotePort: number): Promise<{ cookie: string; inode: number }> {
  const r = await ns.exec(["ss", "-tnieH", "state", "established", `( sport = :${localPort} and dport = :${remotePort} )`]);
  expect(r.code, describeRun(r)).toBe(0);
  const sk = /\bsk:([0-9a-f]+)/.exec(r.stdout)?.[1];
  const ino = /\bino:(\d+)/.exec(r.stdout)?.[1];
  expect(sk && ino, `ss shows the socket ${localPort}>${remotePort}: ${r.stdout}`).toBeTruthy();
  return { cookie: BigInt(`0x${sk}`).toString(), inode: Number(ino) };
}

async function ask(p: BackgroundProcess, command: string): Promise<string> {
  p.child.stdin!.write(`${command}\n`);
  return p.nextLine(10_000);
}

const brief = (e: WatchEvent) => `${e.type} ${e.localPort}>${e.remotePort} ns=${e.namespace?.name ?? "-"} cookie=${e.cookie} inode=${e.inode} pid=${e.process?.pid ?? "-"}`;

describe("watch -N --sensor ebpf", { timeout: 90_000 }, () => {
  it("reports the same connection of two namespaces each with its own namespace, cookie and inode", async () => {
    const [a, b] = places as [Place, Place];
    const sentinel = a.ns.spawn([PYTHON, "-c", PAIR_PY, String(SENTINEL_PORT), "0"]);
    expect(await sentinel.nextLine(10_000)).toBe("ready");
    const sentinelPort = Number(await ask(sentinel, "connect"));
    const watcher = new BackgroundProcess([EXECUTABLE, "watch", "-N", "--sensor", "ebpf", "--ndjson", "--initial", "-t", "--interval", "3600", "--duration", "60"]);
    const events: WatchEvent[] = [];
    const until = async (done: () => boolean) => {
      const deadline = performance.now() + 30_000;
      while (!done()) {
        let line: string;
        try {
          line = await watcher.nextLine(Math.max(1, deadline - performance.now()));
        } catch (error) {
          throw new Error(`${(error as Error).message}\nevents:\n${events.map(brief).join("\n")}\nstderr: ${watcher.stderr}`);
        }
        events.push(JSON.parse(line) as WatchEvent);
      }
    };
    const isOpened = (e: WatchEvent, local: number, remote: number) => e.type === "opened" && e.localPort === local && e.remotePort === remote;
    try {
      await until(() => events.some((e) => isOpened(e, sentinelPort, SENTINEL_PORT) && e.namespace?.inode === a.inode));
      const first = events.length;
      for (const place of [a, b]) expect(await ask(place.pair, "connect")).toBe(String(CLIENT_PORT));
      // The sensor's records come in order: once a later connection is reported, so is all before it.
      const after = Number(await ask(sentinel, "connect"));
      await until(() => events.some((e) => isOpened(e, after, SENTINEL_PORT)));
      expect(watcher.stderr).not.toMatch(/sensor unavailable/);
      const ours = events.filter((e) => isOpened(e, CLIENT_PORT, SERVER_PORT) || isOpened(e, SERVER_PORT, CLIENT_PORT));
      const report = ours.map(brief).join("\n");
      expect(ours.every((e) => events.indexOf(e) >= first), `all from the sensor, after the first look:\n${report}`).toBe(true);
      // The client sides: their process connected while the sensor ran, so each is placed exactly.
      for (const place of places) {
        const e = ours.filter((x) => x.localPort === CLIENT_PORT && x.namespace?.inode === place.inode);
        expect(e, `the client side in ${place.ns.name}:\n${report}`).toHaveLength(1);
        const id = await ssIdentity(place.ns, CLIENT_PORT, SERVER_PORT);
        expect({ cookie: e[0]!.cookie, inode: e[0]!.inode, name: e[0]!.namespace?.name, pid: e[0]!.process?.pid }).toEqual({
          cookie: id.cookie,
          inode: id.inode,
          name: place.ns.name,
          pid: place.pair.pid,
        });
      }
      // Every side is reported, each right: a cookie names its own socket, in its own namespace, once.
      const truth = new Map<string, { local: number; inode: number; place: Place }>();
      for (const place of places) {
        for (const [local, remote] of [[CLIENT_PORT, SERVER_PORT], [SERVER_PORT, CLIENT_PORT]] as const) {
          const id = await ssIdentity(place.ns, local, remote);
          truth.set(id.cookie, { local, inode: id.inode, place });
        }
      }
      expect(ours, `the four sides:\n${report}`).toHaveLength(4);
      for (const e of ours) {
        expect(e.cookie, `every side completed:\n${report}`).not.toBeNull();
        const t = truth.get(e.cookie!);
        expect(t, `cookie ${e.cookie} is one of the four sockets:\n${report}`).toBeDefined();
        expect({ local: e.localPort, inode: e.inode, ns: e.namespace?.inode }, report).toEqual({ local: t!.local, inode: t!.inode, ns: t!.place.inode });
      }
      const cookies = ours.flatMap((e) => (e.cookie ? [e.cookie] : []));
      expect(new Set(cookies).size, `no cookie twice:\n${report}`).toBe(cookies.length);
    } finally {
      await watcher.stop();
      await sentinel.stop();
    }
  });

  // The accepted sides of two listeners on the same address and port, in two namespaces, can be
  // told apart only by the namespace the socket itself is in (addresses are the same, and both
  // listeners listen while the sensor runs): the program reads it from the socket.
  it("reports each accepted side of two same-port listeners started after it in its own namespace, with that listener's process", async () => {
    const sentinel = places[0]!.ns.spawn([PYTHON, "-c", PAIR_PY, String(SENTINEL_PORT + 10), "0"]);
    expect(await sentinel.nextLine(10_000)).toBe("ready");
    const sentinelPort = Number(await ask(sentinel, "connect"));
    const watcher = new BackgroundProcess([EXECUTABLE, "watch", "-N", "--sensor", "ebpf", "--ndjson", "--initial", "-t", "--interval", "3600", "--duration", "60"]);
    const servers: BackgroundProcess[] = [];
    const events: WatchEvent[] = [];
    const until = async (done: () => boolean) => {
      const deadline = performance.now() + 30_000;
      while (!done()) {
        let line: string;
        try {
          line = await watcher.nextLine(Math.max(1, deadline - performance.now()));
        } catch (error) {
          throw new Error(`${(error as Error).message}\nevents:\n${events.map(brief).join("\n")}\nstderr: ${watcher.stderr}`);
        }
        events.push(JSON.parse(line) as WatchEvent);
      }
    };
    const isOpened = (e: WatchEvent, local: number, remote: number) => e.type === "opened" && e.localPort === local && e.remotePort === remote;
    const [server, client] = [SERVER_PORT + 10, CLIENT_PORT + 10];
    try {
      await until(() => events.some((e) => isOpened(e, sentinelPort, SENTINEL_PORT + 10)));
      for (const place of places) {
        const p = place.ns.spawn([PYTHON, "-c", PAIR_PY, String(server), String(client)]);
        servers.push(p);
        expect(await p.nextLine(10_000)).toBe("ready");
      }
      for (const p of servers) expect(await ask(p, "connect")).toBe(String(client));
      // The sensor's records come in order: once a later connection is reported, so is all before it.
      const after = Number(await ask(sentinel, "connect"));
      await until(() => events.some((e) => isOpened(e, after, SENTINEL_PORT + 10)));
      expect(watcher.stderr).not.toMatch(/sensor unavailable/);
      const accepted = events.filter((e) => isOpened(e, server, client));
      const report = events.filter((e) => e.localPort === server || e.remotePort === server).map(brief).join("\n");
      expect(accepted, `one accepted side per namespace:\n${report}`).toHaveLength(2);
      for (const [i, place] of places.entries()) {
        const e = accepted.filter((x) => x.namespace?.inode === place.inode);
        expect(e, `the accepted side in ${place.ns.name}:\n${report}`).toHaveLength(1);
        const id = await ssIdentity(place.ns, server, client);
        // The inode is the accepted socket's file's: 0 when the server had not accepted it yet.
        expect([0, id.inode], report).toContain(e[0]!.inode);
        expect({ cookie: e[0]!.cookie, name: e[0]!.namespace?.name, pid: e[0]!.process?.pid }, report).toEqual({
          cookie: id.cookie,
          name: place.ns.name,
          pid: servers[i]!.pid,
        });
      }
    } finally {
      await watcher.stop();
      await sentinel.stop();
      for (const p of servers) await p.stop();
    }
  });
});
