/**
 * The set-state program's counter reads against the real kernel: with this machine's BTF the
 * verifier accepts the reads (bpf_probe_read_kernel), and each side of a loopback connection that
 * moved a known number of bytes reaches CLOSE with exactly those counts, through the ring buffer
 * and through per-CPU perf buffers; with no BTF (a path where there is none) the program is
 * built without the reads, the records say counters unknown, and the sensor's notes say why.
 *
 * Needs root (network namespaces, CAP_BPF/CAP_PERFMON or CAP_SYS_ADMIN), python3 and a kernel
 * with BTF. Does not need the compiled executable.
 */
import { afterAll, beforeAll, expect, test } from "vitest";
import fs from "node:fs";
import { Netns, describeRun, requireRoot } from "./helpers/netns.ts";
import { SetStateSensor, type SetStateSensorOptions } from "../../src/engine/linux/bpf/sensor.ts";
import type { SetStateRecord } from "../../src/engine/linux/bpf/set-state-record.ts";

const PYTHON = "/usr/bin/python3";
const HOST = "127.83.42.7";
// Below the ephemeral range, so no client's local port (here or elsewhere) can be it.
const PORT = 21_000 + (process.pid % 9_000);

/**
 * One connection: the client sends 1234 bytes, the server answers 56 and closes first. Each side
 * waits until what it sent is acknowledged and prints its TCP_INFO bytes_sent then (which counts
 * retransmitted bytes, which a loaded machine can cause even on loopback) and bytes_retrans.
 */
const EXCHANGE_PY = `
import fcntl, json, socket, struct, sys, termios, time
host, port = sys.argv[1], int(sys.argv[2])
def sent(s):
    deadline = time.monotonic() + 10
    while struct.unpack("i", fcntl.ioctl(s, termios.TIOCOUTQ, b"\\0" * 4))[0] != 0:
        assert time.monotonic() < deadline, "unacknowledged after 10 s"
        time.sleep(0.001)
    return struct.unpack_from("<QQ", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232), 200)
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((host, port))
srv.listen(1)
c = socket.create_connection((host, port))
a, _ = srv.accept()
c.sendall(b"c" * 1234)
got = 0
while got < 1234:
    got += len(a.recv(4096))
a.sendall(b"s" * 56)
got = 0
while got < 56:
    got += len(c.recv(4096))
client, server = sent(c), sent(a)
a.close()
assert c.recv(1) == b""
c.close()
print(json.dumps({"client": client, "server": server}), flush=True)
`;

let ns: Netns | undefined;

beforeAll(async () => {
  requireRoot("The sensor counter reads test");
  if (!fs.existsSync("/sys/kernel/btf/vmlinux")) throw new Error("this test needs a kernel with BTF (/sys/kernel/btf/vmlinux)");
  ns = await Netns.create("bpfc");
  const added = await ns.exec(["ip", "addr", "add", `${HOST}/32`, "dev", "lo"], { timeoutMs: 5_000 });
  expect(added.code, describeRun(added)).toBe(0);
});

afterAll(async () => {
  await ns?.dispose();
});

/** Runs the exchange under a sensor and returns the CLOSE record of each side. */
async function closesUnder(
  options: SetStateSensorOptions,
): Promise<{ sensor: SetStateSensor; client: SetStateRecord; server: SetStateRecord; info: Record<"client" | "server", [number, number]> }> {
  const sensor = SetStateSensor.start(options);
  try {
    const run = await ns!.exec([PYTHON, "-c", EXCHANGE_PY, HOST, String(PORT)], { timeoutMs: 20_000 });
    expect(run.code, describeRun(run)).toBe(0);
    const closes: SetStateRecord[] = [];
    // Both ends of the connection; not the listener's own CLOSE.
    const ours = (r: SetStateRecord) => r.localAddress === HOST && r.newState === "CLOSE" && r.remotePort !== 0 && (r.localPort === PORT || r.remotePort === PORT);
    // The script's sockets are closed when it exits; wait (bounded) for both CLOSE records.
    const deadline = performance.now() + 10_000;
    while (closes.length < 2 && performance.now() < deadline) {
      closes.push(...sensor.drain().filter(ours));
      if (closes.length < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(closes.length, "CLOSE records of both sides").toBe(2);
    const info = JSON.parse(run.stdout) as Record<"client" | "server", [number, number]>;
    return { sensor, client: closes.find((r) => r.remotePort === PORT)!, server: closes.find((r) => r.localPort === PORT)!, info };
  } catch (error) {
    sensor.stop();
    throw error;
  }
}

test.each([["ringbuf"], ["perf"]] as const)("with BTF, through %s: each side's CLOSE carries its exact counts", async (output) => {
  const { sensor, client, server, info } = await closesUnder({ output });
  try {
    expect(sensor.program.listing).toMatch(/call 113\b/);
    expect(sensor.notes.join("\n")).not.toMatch(/carry no (byte or packet counts|network namespace)/);
    // Both sockets' own namespace, the one made here, read from the sockets themselves.
    const inode = fs.statSync(`/run/netns/${ns!.name}`).ino;
    expect([client.netns, server.netns]).toEqual([inode, inode]);
    // The server closed first, so the client received its FIN (one byte in tcp_info's count);
    // the server, in FIN_WAIT2 when the client's FIN came, received the client's too.
    // Bytes sent as the sender's own TCP_INFO counted them (payload plus any retransmitted).
    expect(info.client[0] - info.client[1]).toBe(1234);
    expect(info.server[0] - info.server[1]).toBe(56);
    expect(client.counters).toMatchObject({ bytesSent: info.client[0], bytesReceived: 57 });
    expect(server.counters).toMatchObject({ bytesSent: info.server[0], bytesReceived: 1235 });
    for (const r of [client, server]) {
      expect(r.counters!.packetsSent).toBeGreaterThanOrEqual(2);
      expect(r.counters!.packetsReceived).toBeGreaterThanOrEqual(2);
    }
  } finally {
    sensor.stop();
  }
});

test("without BTF: no reads in the program, counters and namespaces unknown, and the notes say why", async () => {
  const { sensor, client, server } = await closesUnder({ btfPath: "/nonexistent/vmlinux" });
  try {
    expect(sensor.program.listing).not.toMatch(/call (113|4)\b/);
    expect(sensor.notes.join("\n")).toMatch(/carry no byte or packet counts.*: the kernel has no BTF/);
    expect(sensor.notes.join("\n")).toMatch(/carry no network namespace.*: the kernel has no BTF/);
    expect(client.counters).toBeNull();
    expect(server.counters).toBeNull();
    expect([client.netns, server.netns]).toEqual([null, null]);
  } finally {
    sensor.stop();
  }
});
