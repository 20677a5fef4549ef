// Every DNS query in this file goes to a UDP socket the test itself binds on 127.0.0.1, and
// every resolver is given that server explicitly, so nothing leaves the loopback interface.

import dgram from "node:dgram";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ReverseDns, parseHosts } from "../../src/net/reverse-dns.ts";

const HOSTS_FIXTURE = `
# The usual Debian header
127.0.0.1	localhost
127.0.1.1	box.example.org	box
::1     localhost ip6-localhost ip6-loopback
ff02::1 ip6-allnodes

10.1.2.3   db.internal   db   # trailing comment
10.1.2.3   other-name-for-db
0.0.0.0    ads.example.com
2001:DB8:0:0::5 v6host
not-an-address  junk
192.168.1.1
`;

/**
 * A tiny DNS server on 127.0.0.1: answers PTR queries for names in `answers`, says NXDOMAIN for
 * names in `missing`, and stays silent for everything else, like a dead server.
 */
class FakeDnsServer {
  readonly socket = dgram.createSocket("udp4");
  readonly queries: string[] = [];
  readonly answers = new Map<string, string>();
  readonly missing = new Set<string>();

  async start(): Promise<string> {
    this.socket.on("message", (message, peer) => this.onQuery(message, peer));
    await new Promise<void>((resolve) => this.socket.bind(0, "127.0.0.1", resolve));
    return `127.0.0.1:${this.socket.address().port}`;
  }

  stop(): void {
    this.socket.close();
  }

  private onQuery(message: Buffer, peer: dgram.RemoteInfo): void {
    const labels: string[] = [];
    let offset = 12;
    while (offset < message.length && message[offset] !== 0) {
      const length = message[offset] ?? 0;
      labels.push(message.subarray(offset + 1, offset + 1 + length).toString("latin1"));
      offset += 1 + length;
    }
    const questionEnd = offset + 5; // zero label, type, class
    const name = labels.join(".").toLowerCase();
    this.queries.push(name);

    const target = this.answers.get(name);
    if (target === undefined && !this.missing.has(name)) return;
    const header = Buffer.alloc(12);
    message.copy(header, 0, 0, 2); // id
    header.writeUInt16BE(target === undefined ? 0x8183 : 0x8180, 2); // response, RD, RA, rcode
    header.writeUInt16BE(1, 4); // one question
    header.writeUInt16BE(target === undefined ? 0 : 1, 6);
    const parts = [header, message.subarray(12, questionEnd)];
    if (target !== undefined) {
      const rdata = encodeName(target);
      const answer = Buffer.alloc(12);
      answer.writeUInt16BE(0xc00c, 0); // pointer to the question's name
      answer.writeUInt16BE(12, 2); // PTR
      answer.writeUInt16BE(1, 4); // IN
      answer.writeUInt32BE(300, 6);
      answer.writeUInt16BE(rdata.length, 10);
      parts.push(answer, rdata);
    }
    this.socket.send(Buffer.concat(parts), peer.port, peer.address);
  }
}

function encodeName(name: string): Buffer {
  const labels = name.split(".").map((label) => [Buffer.from([label.length]), Buffer.from(label)]);
  return Buffer.concat([...labels.flat(), Buffer.from([0])]);
}

describe("parseHosts", () => {
  const hosts = parseHosts(HOSTS_FIXTURE);

  it("maps canonical addresses to the first name of their first line", () => {
    expect(hosts.get("127.0.0.1")).toBe("localhost");
    expect(hosts.get("127.0.1.1")).toBe("box.example.org");
    expect(hosts.get("::1")).toBe("localhost");
    expect(hosts.get("10.1.2.3")).toBe("db.internal");
    expect(hosts.get("2001:db8::5")).toBe("v6host");
  });

  it("skips comments, bad addresses and lines without a name", () => {
    expect([...hosts.values()]).not.toContain("junk");
    expect(hosts.has("192.168.1.1")).toBe(false);
    expect(parseHosts("# only a comment\n\n   \n").size).toBe(0);
  });

  it("reads Windows line endings", () => {
    expect(parseHosts("10.0.0.1 a\r\n10.0.0.2 b\r\n").get("10.0.0.2")).toBe("b");
  });
});

describe("ReverseDns", () => {
  const server = new FakeDnsServer();
  let serverAddress = "";
  let hostsDir = "";
  let hostsPath = "";
  const resolvers: ReverseDns[] = [];

  function makeResolver(options: ConstructorParameters<typeof ReverseDns>[0] = {}): ReverseDns {
    const resolver = new ReverseDns({ servers: [serverAddress], hostsPath, ...options });
    resolvers.push(resolver);
    return resolver;
  }

  beforeAll(async () => {
    serverAddress = await server.start();
    hostsDir = mkdtempSync(join(tmpdir(), "sockwarden-hosts-"));
    hostsPath = join(hostsDir, "hosts");
    writeFileSync(hostsPath, HOSTS_FIXTURE);
    server.answers.set("4.3.2.192.in-addr.arpa", "web.example.net");
    server.answers.set(
      "7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
      "six.example.net",
    );
    server.missing.add("9.3.2.192.in-addr.arpa");
  });

  afterEach(() => {
    for (const resolver of resolvers.splice(0)) resolver.close();
  });

  afterAll(() => {
    server.stop();
    rmSync(hostsDir, { recursive: true, force: true });
  });

  it("answers from the hosts file without any query", async () => {
    const resolver = makeResolver();
    const before = server.queries.length;
    expect(await resolver.resolve("10.1.2.3")).toBe("db.internal");
    expect(await resolver.resolve("::ffff:10.1.2.3")).toBe("db.internal");
    expect(await resolver.resolve("2001:db8:0::5")).toBe("v6host");
    expect(server.queries.length).toBe(before);
  });

  it("never sends loopback or unspecified addresses to DNS", async () => {
    const resolver = makeResolver();
    const before = server.queries.length;
    const names = await resolver.resolveAll(
      ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.2", "0.0.0.0", "::", "::ffff:0.0.0.0"],
      { budgetMs: 300 },
    );
    expect(Object.fromEntries(names)).toEqual({ "127.0.0.1": "localhost", "::1": "localhost" });
    // 0.0.0.0 is in the hosts file (an ad-blocking line) but is still not named.
    expect(resolver.cached("0.0.0.0")).toBeNull();
    expect(resolver.cached("127.9.9.9")).toBeNull();
    expect(server.queries.length).toBe(before);
  });

  it("looks up PTR records and caches the answer", async () => {
    const resolver = makeResolver();
    expect(resolver.cached("192.2.3.4")).toBeUndefined();
    expect(await resolver.resolve("192.2.3.4")).toBe("web.example.net");
    expect(await resolver.resolve("2001:db8::7")).toBe("six.example.net");
    const asked = server.queries.length;
    expect(await resolver.resolve("192.2.3.4")).toBe("web.example.net");
    expect(resolver.cached("::ffff:192.2.3.4")).toBe("web.example.net");
    expect(server.queries.length).toBe(asked);
  });

  it("remembers that an address has no name, until the negative entry expires", async () => {
    let now = 1_000_000;
    const resolver = makeResolver({ now: () => now, negativeTtlMs: 5_000 });
    expect(await resolver.resolve("192.2.3.9")).toBeNull();
    expect(resolver.cached("192.2.3.9")).toBeNull();
    now += 5_001;
    expect(resolver.cached("192.2.3.9")).toBeUndefined();
  });

  it("resolveAll returns what resolved and stops at the budget on a silent server", async () => {
    const resolver = makeResolver();
    const silent = ["192.0.2.1", "192.0.2.2", "198.51.100.7", "2001:db8::dead"];
    const before = server.queries.length;
    const started = performance.now();
    const addresses = ["192.2.3.4", "10.1.2.3", ...silent, "not an address"];
    const names = await resolver.resolveAll(addresses, { budgetMs: 250 });
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(240);
    expect(elapsed).toBeLessThan(450);
    expect(Object.fromEntries(names)).toEqual({
      "192.2.3.4": "web.example.net",
      "10.1.2.3": "db.internal",
    });
    // The silent addresses really were asked, only of the local fake server.
    expect(server.queries.slice(before)).toEqual(
      expect.arrayContaining(["1.2.0.192.in-addr.arpa", "7.100.51.198.in-addr.arpa"]),
    );
  });

  it("holds the budget with many addresses and little concurrency", async () => {
    const resolver = makeResolver({ concurrency: 2 });
    const addresses = Array.from({ length: 200 }, (_, i) => `203.0.113.${i % 250}`).concat(
      Array.from({ length: 200 }, (_, i) => `2001:db8:1::${i.toString(16)}`),
    );
    const started = performance.now();
    const names = await resolver.resolveAll(addresses, { budgetMs: 150 });
    expect(performance.now() - started).toBeLessThan(350);
    expect(names.size).toBe(0);
  });

  it("returns at once when nothing needs DNS, and does not change the map afterwards", async () => {
    const resolver = makeResolver();
    const started = performance.now();
    const names = await resolver.resolveAll(["10.1.2.3", "0.0.0.0"]);
    expect(performance.now() - started).toBeLessThan(50);
    expect(names.size).toBe(1);

    const late = await resolver.resolveAll(["192.0.2.77"], { budgetMs: 50 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(late.size).toBe(0);
  });

  it("resolve() gives up after the per-lookup timeout", async () => {
    const resolver = makeResolver({ lookupTimeoutMs: 150 });
    const started = performance.now();
    expect(await resolver.resolve("192.0.2.50")).toBeNull();
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(140);
    expect(elapsed).toBeLessThan(400);
    // A timeout is not a "no such name" answer: the address can be asked about again.
    expect(resolver.cached("192.0.2.50")).toBeUndefined();
  });

  it("close() cancels pending lookups and sends nothing afterwards", async () => {
    const resolver = makeResolver({ lookupTimeoutMs: 5_000 });
    const pending = resolver.resolve("192.0.2.60");
    await new Promise((resolve) => setTimeout(resolve, 20));
    const started = performance.now();
    resolver.close();
    expect(await pending).toBeNull();
    expect(performance.now() - started).toBeLessThan(100);
    const before = server.queries.length;
    expect(await resolver.resolve("192.2.3.4")).toBeNull();
    expect(await resolver.resolve("10.1.2.3")).toBe("db.internal");
    expect(server.queries.length).toBe(before);
  });

  it("reads no hosts file when hostsPath is null, and survives a missing one", async () => {
    const none = makeResolver({ hostsPath: null });
    expect(none.cached("10.1.2.3")).toBeUndefined();
    const missing = makeResolver({ hostsPath: join(hostsDir, "does-not-exist") });
    expect(missing.cached("127.0.0.1")).toBeNull();
  });

  it("reads the hosts file once", async () => {
    const path = join(hostsDir, "hosts-once");
    writeFileSync(path, "10.9.9.9 first\n");
    const resolver = makeResolver({ hostsPath: path });
    expect(resolver.cached("10.9.9.9")).toBe("first");
    writeFileSync(path, "10.9.9.9 second\n");
    expect(resolver.cached("10.9.9.9")).toBe("first");
  });

  it("keeps the cache within maxEntries, dropping the oldest", async () => {
    const resolver = makeResolver({ maxEntries: 1 });
    expect(await resolver.resolve("192.2.3.4")).toBe("web.example.net");
    expect(await resolver.resolve("2001:db8::7")).toBe("six.example.net");
    expect(resolver.cached("2001:db8::7")).toBe("six.example.net");
    expect(resolver.cached("192.2.3.4")).toBeUndefined();
  });
});
