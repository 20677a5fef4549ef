/**
 * Records from per-CPU perf buffers, read one buffer after another, in the order a failing run of
 * the perf-buffer sensor test read them: a connection's FIN_WAIT1 and its peer's CLOSE_WAIT (one
 * CPU) came a read after the FIN_WAIT2 and CLOSE that followed them (the other CPU).
 */
import { describe, expect, test } from "vitest";
import type { TcpState } from "../../src/model/endpoint.ts";
import type { SetStateRecord } from "../../src/engine/linux/bpf/set-state-record.ts";
import { CpuOrder, PERF_REORDER_WINDOW_NS } from "../../src/engine/linux/bpf/cpu-order.ts";

function record(socket: bigint, oldState: TcpState, newState: TcpState, kernelTimeNs: bigint): SetStateRecord {
  return {
    kernelTimeNs, socket, oldState, newState, oldStateCode: 0, newStateCode: 0, family: 4, protocol: 6,
    localAddress: "127.0.0.1", localPort: 7700, remoteAddress: "127.0.0.1", remotePort: 39173,
    pid: null, tid: null, uid: null, gid: null, comm: null, ownerSource: null, counters: null, netns: null,
  };
}

const MS = 1_000_000n;
const T = 52_214_174_000_000n;
const client = 1n;
const server = 2n;
// As read: the second CPU's records in the first read, the first CPU's in the next.
const firstRead = [
  record(server, "CLOSE_WAIT", "LAST_ACK", T + 402_169n),
  record(client, "FIN_WAIT1", "FIN_WAIT2", T + 426_345n),
  record(client, "FIN_WAIT2", "CLOSE", T + 461_672n),
  record(server, "LAST_ACK", "CLOSE", T + 475_789n),
];
const secondRead = [record(client, "ESTABLISHED", "FIN_WAIT1", T + 330_995n), record(server, "ESTABLISHED", "CLOSE_WAIT", T + 344_910n)];
const states = (records: SetStateRecord[]) => records.map((r) => `${r.socket}:${r.newState}`);

describe("CpuOrder", () => {
  test("a read right after the changes holds them; the next read lets them all out in kernel-time order", () => {
    const order = new CpuOrder();
    expect(order.take([...firstRead], T + 500_000n)).toEqual([]);
    expect(order.pending).toBe(4);
    const out = order.take([...secondRead], T + 500_000n + 3n * MS);
    expect(states(out)).toEqual(["1:FIN_WAIT1", "2:CLOSE_WAIT", "2:LAST_ACK", "1:FIN_WAIT2", "1:CLOSE", "2:CLOSE"]);
    expect(order.pending).toBe(0);
  });

  test("what happened a window before the read is let out at once, sorted; what is newer waits", () => {
    const order = new CpuOrder();
    const readAt = T + 426_345n + PERF_REORDER_WINDOW_NS;
    const out = order.take([...firstRead].reverse(), readAt);
    expect(states(out)).toEqual(["2:LAST_ACK", "1:FIN_WAIT2"]);
    expect(order.pending).toBe(2);
    expect(states(order.flush())).toEqual(["1:CLOSE", "2:CLOSE"]);
    expect(order.pending).toBe(0);
  });

  test("reads with nothing new let out what waited once its window has passed", () => {
    const order = new CpuOrder();
    order.take([record(client, "CLOSE", "SYN_SENT", T)], T + MS);
    expect(order.take([], T + MS)).toEqual([]);
    expect(states(order.take([], T + PERF_REORDER_WINDOW_NS))).toEqual(["1:SYN_SENT"]);
  });
});
