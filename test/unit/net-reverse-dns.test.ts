// Every DNS query in this file goes to a UDP socket the test itself binds on 127.0.0.1, and
// every resolver is given that server explicitly, so nothing leaves the loopback interface.

import dgram from "node:dgram";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ReverseDns, parseHosts } from "../../src/net/reverse-dns.ts";
import { ManualTimers } from "./helpers/manual-timers.ts";
import { waitFor } from "./helpers/waits.ts";
import { settle, track, waitWithoutTimers, withTestClock } from "./helpers/test-clock.ts";

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
 * names in `missing`, and stays silent for everything else, like a dead server. Queries for a
 * held name wait, unanswered, until it is released.
 */
class FakeDnsServer {
  readonly socket = dgram.createSocket("udp4");
  readonly queries: string[] = [];
  readonly answers = new Map<string, string>();
  readonly missing = new Set<string>();
  private readonly held = new Map<string, { message: Buffer; peer: dgram.RemoteInfo; questionEnd: number }[]>();

  async start(): Promise<string> {
    this.socket.on("message", (message, peer) => this.onQuery(message, peer));
    // An answer to a resolver already closed comes back as ICMP "port unreachable", which the
    // socket reports as an error; that says nothing about the code under test.
    this.socket.on("error", () => {});
    await new Promise<void>((resolve) => this.socket.bind(0, "127.0.0.1", resolve));
    return `127.0.0.1:${this.socket.address().port}`;
  }

  stop(): void {
    this.socket.close();
  }

  /** Queries for name get no answer until release(name). */
  hold(name: string): void {
    this.held.set(name, []);
  }

  /** Answers the held queries for name, and later ones at once. */
  release(name: string): void {
    const waiting = this.held.get(name) ?? [];
    this.held.delete(name);
    for (const q of waiting) this.respond(q.message, q.peer, name, q.questionEnd);
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
    const held = this.held.get(name);
    if (held !== undefined) {
      held.push({ message, peer, questionEnd });
      return;
    }
    this.respond(message, peer, name, questionEnd);
  }

  private respond(message: Buffer, peer: dgram.RemoteInfo, name: string, questionEnd: number): void {
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

/** Moves fake time on by ms, firing what falls due, then lets the promises that follow settle. */
async function advance(timers: ManualTimers, ms: number): Promise<void> {
  timers.advance(ms);
  await settle();
}

/** The promise's value; throws saying what was awaited when it takes over ms of real time. */
async function within<T>(what: string, promise: Promise<T>, ms = 10_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** The PTR name the resolver asks for an IPv4 address. */
const ptr4 = (address: string) => `${address.split(".").reverse().join(".")}.in-addr.arpa`;

/**
 * Far beyond any test, so that the per-lookup deadline never ends a lookup unless a test moves
 * fake time there. The resolver underneath also gets it as its own timeout, which Bun caps at
 * about 5 s: a silent lookup is never dropped sooner, and tests tell the two deadlines apart by
 * the cache (a lookup that ended by itself is remembered as "no name"; one cut off is not).
 */
const NEVER_MS = 60_000;

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

describe("ReverseDns", { timeout: 30_000 }, () => {
  const server = new FakeDnsServer();
  let serverAddress = "";
  let hostsDir = "";
  let hostsPath = "";
  const resolvers: ReverseDns[] = [];

  function makeResolver(options: ConstructorParameters<typeof ReverseDns>[0] = {}): ReverseDns {
    // Lookups wait for the fake server's answer however slow the machine is; the tests that are
    // about deadlines drive them with fake timers.
    const resolver = new ReverseDns({ servers: [serverAddress], hostsPath, lookupTimeoutMs: NEVER_MS, ...options });
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
    expect(await resolver.resolve("192.2.3.4"), "no answer for 192.2.3.4 from the fake server").toBe("web.example.net");
    expect(await resolver.resolve("2001:db8::7"), "no answer for 2001:db8::7 from the fake server").toBe("six.example.net");
    const asked = server.queries.length;
    expect(await resolver.resolve("192.2.3.4")).toBe("web.example.net");
    expect(resolver.cached("::ffff:192.2.3.4")).toBe("web.example.net");
    expect(server.queries.length).toBe(asked);
  });

  it("remembers that an address has no name, until the negative entry expires", async () => {
    let now = 1_000_000;
    const resolver = makeResolver({ now: () => now, negativeTtlMs: 5_000 });
    expect(await resolver.resolve("192.2.3.9"), "192.2.3.9 has no name (NXDOMAIN)").toBeNull();
    expect(resolver.cached("192.2.3.9")).toBeNull();
    now += 5_001;
    expect(resolver.cached("192.2.3.9")).toBeUndefined();
  });

  it("resolveAll returns what resolved and stops at the budget on a silent server", async () => {
    const timers = new ManualTimers();
    const resolver = makeResolver({ timers });
    const silent = ["192.0.2.1", "192.0.2.2", "198.51.100.7", "2001:db8::dead"];
    const silentNames = [
      ptr4("192.0.2.1"), ptr4("192.0.2.2"), ptr4("198.51.100.7"),
      "d.a.e.d.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
    ];
    const before = server.queries.length;
    const addresses = ["192.2.3.4", "10.1.2.3", ...silent, "not an address"];
    const call = track(resolver.resolveAll(addresses, { budgetMs: 250 }));
    expect(timers.pending(), "resolveAll arms one timer, for its budget").toEqual([250]);
    // Every silent address really was asked, only of the local fake server, and the one with a
    // name has its answer: only the budget is left to end the call.
    await waitFor("every address to be asked of the fake server", () =>
      silentNames.every((name) => server.queries.slice(before).includes(name)),
    );
    await waitFor("the answer for 192.2.3.4 to arrive", () => resolver.cached("192.2.3.4") === "web.example.net");
    await settle();
    expect(call.settled, "resolveAll returned before its budget with lookups still out").toBe(false);
    await advance(timers, 249);
    expect(call.settled, "resolveAll returned 1 ms before its budget").toBe(false);
    await advance(timers, 1);
    expect(call.settled, "resolveAll did not return when its budget ran out").toBe(true);
    expect(Object.fromEntries(await call.promise)).toEqual({
      "192.2.3.4": "web.example.net",
      "10.1.2.3": "db.internal",
    });
  });

  it("with the runtime's own timers (the default), resolveAll on a silent server returns at its budget, not at the lookups' timeout", async () => {
    const resolver = makeResolver();
    const before = server.queries.length;
    const silentNames = [ptr4("192.0.2.11"), ptr4("198.51.100.11")];
    await withTestClock(async (advanceClock) => {
      const call = track(resolver.resolveAll(["192.0.2.11", "198.51.100.11", "10.1.2.3"], { budgetMs: 250 }));
      await waitWithoutTimers("both silent addresses to be asked of the fake server", () =>
        silentNames.every((name) => server.queries.slice(before).includes(name)),
      );
      await advanceClock(249);
      expect(call.settled, "resolveAll returned before its 250 ms budget").toBe(false);
      await advanceClock(1);
      expect(call.settled, "resolveAll did not return when its 250 ms budget ran out").toBe(true);
      expect(Object.fromEntries(await call.promise)).toEqual({ "10.1.2.3": "db.internal" });
    });
    // The lookups were still out when the call returned: the budget ended it, not their own end.
    expect(resolver.cached("192.0.2.11"), "the lookups ended before the call returned").toBeUndefined();
    expect(resolver.cached("198.51.100.11"), "the lookups ended before the call returned").toBeUndefined();
  });

  it("holds the budget with many addresses and little concurrency", async () => {
    const timers = new ManualTimers();
    const resolver = makeResolver({ concurrency: 2, timers });
    const addresses = Array.from({ length: 200 }, (_, i) => `203.0.113.${i % 250}`).concat(
      Array.from({ length: 200 }, (_, i) => `2001:db8:1::${i.toString(16)}`),
    );
    const before = server.queries.length;
    const asked = () =>
      server.queries.slice(before).filter((n) => n.endsWith(".113.0.203.in-addr.arpa") || n.endsWith(".1.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa")).length;
    const call = track(resolver.resolveAll(addresses, { budgetMs: 150 }));
    expect(timers.pending(), "resolveAll arms one timer, for its budget").toEqual([150]);
    // Two lookups out, 398 waiting their turn behind a silent server.
    await waitFor("the first two lookups to reach the fake server", () => asked() >= 2);
    await settle();
    expect(asked(), "more lookups in flight than the concurrency allows").toBe(2);
    await advance(timers, 149);
    expect(call.settled, "resolveAll returned before its budget").toBe(false);
    await advance(timers, 1);
    expect(call.settled, "the queue behind a silent server held resolveAll past its budget").toBe(true);
    expect((await call.promise).size).toBe(0);
  });

  it("returns at once when nothing needs DNS, and does not change the map afterwards", async () => {
    const timers = new ManualTimers();
    const resolver = makeResolver({ timers });
    // No timer is armed and none fires: the call can only settle by itself.
    const names = await within("resolveAll with nothing to ask DNS", resolver.resolveAll(["10.1.2.3", "0.0.0.0"]));
    expect(timers.pending(), "a timer was armed with nothing to look up").toEqual([]);
    expect(names.size).toBe(1);

    // The answer comes after the budget: the map already returned must stay as it was.
    const lateName = ptr4("192.0.2.77");
    server.answers.set(lateName, "late.example.net");
    server.hold(lateName);
    const before = server.queries.length;
    const late = track(resolver.resolveAll(["192.0.2.77"], { budgetMs: 50 }));
    await waitFor("the query for 192.0.2.77 to reach the fake server", () => server.queries.slice(before).includes(lateName));
    await advance(timers, 50);
    expect(late.settled, "resolveAll did not return when its budget ran out").toBe(true);
    const lateNames = await late.promise;
    expect(lateNames.size).toBe(0);
    server.release(lateName);
    await waitFor("the late answer to reach the cache", () => resolver.cached("192.0.2.77") === "late.example.net");
    await settle();
    expect(Object.fromEntries(lateNames), "the late answer changed a map already returned").toEqual({});
  });

  it("resolve() gives up after the per-lookup timeout", async () => {
    const timers = new ManualTimers();
    const resolver = makeResolver({ timers });
    const before = server.queries.length;
    const call = track(resolver.resolve("192.0.2.50"));
    expect(timers.pending(), "resolve arms one timer, for lookupTimeoutMs").toEqual([NEVER_MS]);
    await waitFor("the query for 192.0.2.50 to reach the fake server", () => server.queries.slice(before).includes(ptr4("192.0.2.50")));
    await advance(timers, NEVER_MS - 1);
    expect(call.settled, "resolve() gave up before lookupTimeoutMs").toBe(false);
    await advance(timers, 1);
    expect(call.settled, "resolve() did not give up at lookupTimeoutMs").toBe(true);
    expect(await call.promise).toBeNull();
    // A timeout is not a "no such name" answer: the address can be asked about again.
    expect(resolver.cached("192.0.2.50")).toBeUndefined();
  });

  it("close() cancels pending lookups and sends nothing afterwards", async () => {
    const timers = new ManualTimers();
    const resolver = makeResolver({ timers });
    const before = server.queries.length;
    const pending = resolver.resolve("192.0.2.60");
    await waitFor("the query for 192.0.2.60 to reach the fake server", () => server.queries.slice(before).includes(ptr4("192.0.2.60")));
    const call = track(pending);
    resolver.close();
    // No timer fires and the server never answers: only close() can end the lookup, and a
    // cancelled lookup settles within a few turns of the event loop, not after a timeout.
    for (let turn = 0; turn < 20 && !call.settled; turn++) await settle();
    expect(call.settled, "close() did not end the pending lookup").toBe(true);
    expect(await pending).toBeNull();
    const after = server.queries.length;
    expect(await resolver.resolve("192.2.3.4")).toBeNull();
    expect(await resolver.resolve("10.1.2.3")).toBe("db.internal");
    await settle();
    expect(server.queries.length).toBe(after);
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
    expect(await resolver.resolve("192.2.3.4"), "no answer for 192.2.3.4 from the fake server").toBe("web.example.net");
    expect(await resolver.resolve("2001:db8::7"), "no answer for 2001:db8::7 from the fake server").toBe("six.example.net");
    expect(resolver.cached("2001:db8::7")).toBe("six.example.net");
    expect(resolver.cached("192.2.3.4")).toBeUndefined();
  });
});
