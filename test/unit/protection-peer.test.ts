import { describe, expect, test } from "vitest";
import { Protection } from "../../src/daemon/protection.ts";
import type { Endpoint } from "../../src/model/endpoint.ts";
import { endpoint, processInfo } from "../support/endpoints.ts";

const SELF = 4242;
const proc = (pid: number, name: string) => processInfo({ pid, name });
const ep = (o: Partial<Endpoint>): Endpoint =>
  endpoint({ localPort: 40000, remotePort: 8099, packetsSent: 0, packetsReceived: 0, rttMs: null, process: proc(SELF, "sockwarden"), pids: [SELF], ...o });
const none = { ports: [], addresses: [], processes: [], paths: [] };

// sockwarden's webhook connection and the receiver's end of it.
const own = ep({});
const receiverEnd = ep({ localPort: 8099, remotePort: 40000, cookie: "2", process: proc(77, "python3"), pids: [77] });

describe("the other end of sockwarden's own connections", () => {
  test("is refused, saying whose connection it ends", () => {
    const p = new Protection(none, SELF, () => [own, receiverEnd]);
    expect(p.closeRefusal(receiverEnd)).toBe("it is the other end of sockwarden's own connection to 127.0.0.1:8099");
    expect(p.closeRefusal(own)).toBe("it is sockwarden's own socket");
  });

  test("only the reversed addresses and ports, over TCP, in the same namespace", () => {
    const ns = (inode: number) => ({ inode, name: null, container: null });
    const p = new Protection(none, SELF, () => [ep({ namespace: ns(1) })]);
    expect(p.closeRefusal({ ...receiverEnd, namespace: ns(1) })).toMatch(/other end/);
    expect(p.closeRefusal({ ...receiverEnd, namespace: ns(2) })).toBeNull();
    expect(p.closeRefusal({ ...receiverEnd, namespace: ns(1), remotePort: 40001 })).toBeNull();
    expect(p.closeRefusal({ ...receiverEnd, namespace: ns(1), localAddress: "127.0.0.2" })).toBeNull();
    const udp = new Protection(none, SELF, () => [ep({ protocol: "udp", state: null })]);
    expect(udp.closeRefusal({ ...receiverEnd, protocol: "udp", state: null })).toBeNull();
    // Another process's connection to the receiver is not sockwarden's.
    const other = new Protection(none, SELF, () => [ep({ process: proc(5, "curl"), pids: [5] })]);
    expect(other.closeRefusal(receiverEnd)).toBeNull();
  });

  test("an IPv4 peer of a dual-stack socket is found under either spelling", () => {
    const p = new Protection(none, SELF, () => [ep({ family: 6, localAddress: "::ffff:127.0.0.1", remoteAddress: "::FFFF:127.0.0.1" })]);
    expect(p.closeRefusal(receiverEnd)).toMatch(/other end of sockwarden's own connection to 127\.0\.0\.1:8099/);
  });

  test("the process holding it is not ended either", () => {
    const p = new Protection(none, SELF, () => [own, receiverEnd]);
    expect(p.killRefusal(proc(77, "python3"), [receiverEnd])).toBe(
      "it holds tcp 127.0.0.1:8099 -> 127.0.0.1:40000: it is the other end of sockwarden's own connection to 127.0.0.1:8099",
    );
    // Sockets read afresh from the process carry no namespace: the addresses decide.
    const watched = new Protection(none, SELF, () => [ep({ namespace: { inode: 1, name: null, container: null } })]);
    const fresh = { protocol: "tcp" as const, family: 4 as const, localAddress: "127.0.0.1", localPort: 8099, remoteAddress: "127.0.0.1", remotePort: 40000 };
    expect(watched.killRefusal(proc(77, "python3"), [fresh])).toMatch(/other end/);
    expect(p.killRefusal(proc(78, "python3"), [{ ...receiverEnd, localPort: 8100 }])).toBeNull();
  });

  test("the table is read once for a batch of requests, and again for the next batch", async () => {
    let reads = 0;
    let table: Endpoint[] = [];
    const p = new Protection(none, SELF, () => {
      reads++;
      return table;
    });
    for (let i = 0; i < 1000; i++) expect(p.closeRefusal({ ...receiverEnd, remotePort: 30000 + i })).toBeNull();
    expect(reads).toBe(1);
    // sockwarden connects afterwards: the next batch sees it.
    table = [own];
    await Promise.resolve();
    expect(p.closeRefusal(receiverEnd)).toMatch(/other end/);
    expect(reads).toBe(2);
  });
});
