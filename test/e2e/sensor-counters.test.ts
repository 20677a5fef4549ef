/**
 * `watch --sensor ebpf --ndjson` reports a connection's final counters when it closes, however it
 * closes, and when it was opened. In a network namespace made here, three loopback connections
 * each move a known number of bytes both ways and end by a reset (SO_LINGER 0), by a normal
 * close and by the peer's close; every side's `closed` event must carry exactly the bytes it
 * received and sent (tcp_info's meanings: a received FIN counts one byte received; bytes sent
 * include retransmitted ones, so the sender's own TCP_INFO, read once all was acknowledged, says
 * how many that is), segment counts, and an `openedAt` no later than its close. No look happens in between (a long interval), so what the
 * closed events carry comes from the sensor's own records, read from the sockets at the change.
 *
 * Needs root (network namespaces, the sensor's capabilities), a kernel with BTF, and a built
 * dist/sockwarden.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type BackgroundProcess, Netns, requireRoot } from "./helpers/netns.ts";
import { EXECUTABLE, requireExecutable } from "./helpers/sockwarden.ts";

const PYTHON = "/usr/bin/python3";
const SCRIPT = fileURLToPath(new URL("./helpers/counted-connections.py", import.meta.url));
const HOST = "127.0.0.1";
const PORT = 7810;
const HOLD_PORT = 7811;

interface WatchEvent {
  type: string;
  time: string;
  state: string | null;
  localPort: number;
  remotePort: number;
  bytesSent: number | null;
  bytesReceived: number | null;
  packetsSent: number | null;
  packetsReceived: number | null;
  openedAt: string | null;
  process: { name: string } | null;
}

/** A side's TCP_INFO once all it sent was acknowledged, just before it closed. */
interface SentInfo {
  bytesSent: number;
  bytesRetrans: number;
}

interface Exchange {
  mode: "reset" | "normal" | "peer";
  clientPort: number;
  clientSent: number;
  serverSent: number;
  clientInfo: SentInfo;
  serverInfo: SentInfo;
}

let ns: Netns | undefined;

beforeAll(async () => {
  requireRoot("The sensor counters test");
  requireExecutable();
  if (!existsSync("/sys/kernel/btf/vmlinux")) throw new Error("this test needs a kernel with BTF (/sys/kernel/btf/vmlinux)");
  ns = await Netns.create("cnt");
});

afterAll(async () => {
  await ns?.dispose();
});

async function readUntil(watcher: BackgroundProcess, into: WatchEvent[], until: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!until()) {
    let line: string;
    try {
      line = await watcher.nextLine(Math.max(1, deadline - performance.now()));
    } catch (err) {
      const tail = into.map((e) => `${e.type} ${e.localPort}>${e.remotePort} ${e.state} ${e.bytesSent}/${e.bytesReceived}`).join("\n");
      throw new Error(`${(err as Error).message}\nevents:\n${tail}\nstderr: ${watcher.stderr}`);
    }
    into.push(JSON.parse(line) as WatchEvent);
  }
}

it("closed events carry each side's final counters and its opening time, for a reset, a normal close and a peer close", async () => {
  const watcher = ns!.spawn([EXECUTABLE, "watch", "--sensor", "ebpf", "--ndjson", "--initial", "-t", "--interval", "60", "--duration", "120"]);
  const hold = ns!.spawn([PYTHON, SCRIPT, "hold", HOST, String(HOLD_PORT)]);
  const events: WatchEvent[] = [];
  let exchange: BackgroundProcess | undefined;
  try {
    // Once the held connection is reported, the watcher runs (the sensor starts before the first look).
    const heldPort = Number(await hold.nextLine(15_000));
    await readUntil(watcher, events, () => events.some((e) => e.type === "opened" && e.localPort === heldPort));

    const before = Date.now();
    // It stays alive until the end, so the watcher can place its sockets by its namespace however late it reads.
    exchange = ns!.spawn([PYTHON, SCRIPT, "exchange", HOST, String(PORT)]);
    const exchanges = JSON.parse(await exchange.nextLine(20_000)) as Exchange[];
    const after = Date.now();
    expect(exchanges.map((x) => x.mode)).toEqual(["reset", "normal", "peer"]);

    const closedOf = (local: number, remote: number) => events.find((e) => e.type === "closed" && e.localPort === local && e.remotePort === remote);
    const sides = exchanges.flatMap((x) => [
      { x, side: "client", local: x.clientPort, remote: PORT },
      { x, side: "server", local: PORT, remote: x.clientPort },
    ]);
    await readUntil(watcher, events, () => sides.every((s) => closedOf(s.local, s.remote) !== undefined));

    for (const { x, side, local, remote } of sides) {
      const closed = closedOf(local, remote)!;
      const where = `${x.mode} close, ${side} side (${local}>${remote}): ${JSON.stringify(closed)}`;
      // The side that received a FIN before its end counts it as a byte (tcp_info's bytes_received).
      const finReceived = x.mode === "reset" ? 0 : 1;
      const [payload, received, info] = side === "client" ? [x.clientSent, x.serverSent, x.clientInfo] : [x.serverSent, x.clientSent, x.serverInfo];
      expect(info.bytesSent - info.bytesRetrans, `${where}: the sender's own count`).toBe(payload);
      expect({ bytesSent: closed.bytesSent, bytesReceived: closed.bytesReceived }, where).toEqual({ bytesSent: info.bytesSent, bytesReceived: received + finReceived });
      // At least the handshake's segment and one of data each way.
      expect(closed.packetsSent, where).toBeGreaterThanOrEqual(2);
      expect(closed.packetsReceived, where).toBeGreaterThanOrEqual(2);
      expect(closed.process?.name, where).toBe("python3");
      // Opened while the sensor ran: a real time, between the script's start and end (give or
      // take the clocks' mapping), not after the close, and the same on the opened event.
      expect(closed.openedAt, where).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      const opened = Date.parse(closed.openedAt!);
      expect(opened, where).toBeGreaterThanOrEqual(before - 1000);
      expect(opened, where).toBeLessThanOrEqual(after + 1000);
      expect(opened, where).toBeLessThanOrEqual(Date.parse(closed.time));
      const openedEvent = events.find((e) => e.type === "opened" && e.localPort === local && e.remotePort === remote);
      expect(openedEvent?.openedAt, where).toBe(closed.openedAt);
    }
    // The client's connect comes before the server's acceptance.
    for (const x of exchanges) {
      expect(Date.parse(closedOf(x.clientPort, PORT)!.openedAt!)).toBeLessThanOrEqual(Date.parse(closedOf(PORT, x.clientPort)!.openedAt!));
    }
    expect(watcher.stderr).not.toMatch(/carry no byte or packet counts/);
  } finally {
    hold.closeInput();
    exchange?.closeInput();
    await watcher.terminate();
    await hold.stop();
    await exchange?.stop();
  }
});
