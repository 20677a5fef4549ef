/**
 * Address -> host name for the `-r`/resolve views: the hosts file first, then PTR lookups, all
 * cached, and always within a time budget so a slow or dead DNS server never stalls a listing.
 */

import { readFileSync } from "node:fs";
import { Resolver } from "node:dns/promises";
import { isLoopback, isUnspecified } from "./address.ts";
import { effectiveIPv4, formatIP, formatIPv4, parseIP } from "./ip.ts";
import { realTimers, withTimeout, type Timers } from "../timers.ts";

/** Options for {@link ReverseDns}; every field has a default suited to an interactive listing. */
export interface ReverseDnsOptions {
  /** Hosts file to read once (the platform's places.hosts()); null or absent skips it. */
  hostsPath?: string | null;
  /** DNS servers (`"10.0.0.1"`, `"127.0.0.1:5353"`, `"[::1]:53"`); default: the system's. */
  servers?: readonly string[];
  /** How long one lookup may take before {@link ReverseDns.resolve} gives up (ms). */
  lookupTimeoutMs?: number;
  /** PTR queries in flight at once; the rest wait their turn. */
  concurrency?: number;
  /** How long a found name is kept (ms). */
  cacheTtlMs?: number;
  /** How long "no name" is kept (ms), so dead addresses are not asked about on every refresh. */
  negativeTtlMs?: number;
  /** Cache size limit; the oldest entries go first. */
  maxEntries?: number;
  /** Clock, for tests. */
  now?: () => number;
  /**
   * Timers behind the per-lookup timeout and the resolveAll budget (test seam; default the
   * global setTimeout and clearTimeout).
   */
  timers?: Timers;
}

/** Options for one {@link ReverseDns.resolveAll} call. */
export interface ResolveAllOptions {
  /** Total time the call may take (ms), however many addresses there are. Default 1000. */
  budgetMs?: number;
}

interface CacheEntry {
  name: string | null;
  expiresAt: number;
}

interface Task {
  query: string;
  settle: (name: string | null) => void;
}

const DEFAULTS = {
  lookupTimeoutMs: 800,
  concurrency: 32,
  cacheTtlMs: 10 * 60_000,
  negativeTtlMs: 60_000,
  maxEntries: 20_000,
};

/**
 * Parses hosts(5) text into canonical address -> first host name, the name gethostbyaddr
 * gives from the files source: the first line for an address wins, later lines only add
 * aliases. Comments, blank lines and lines with bad addresses are skipped.
 */
export function parseHosts(text: string): Map<string, string> {
  const names = new Map<string, string>();
  for (const rawLine of text.split(/\r?\n/)) {
    const hash = rawLine.indexOf("#");
    const line = hash === -1 ? rawLine : rawLine.slice(0, hash);
    const [addressText, name] = line.trim().split(/\s+/);
    if (addressText === undefined || name === undefined) continue;
    const key = lookupKey(addressText);
    if (key !== null && !names.has(key)) names.set(key, name);
  }
  return names;
}

/**
 * Reverse name resolution with a cache. Loopback and unspecified addresses never go to DNS:
 * loopback is answered from the hosts file alone and unspecified is never named (ad-blocking
 * hosts files map thousands of names to 0.0.0.0). Lookups that outlive a caller's budget keep
 * running in the background and fill the cache for the next refresh; call {@link close} when
 * done so they do not keep the process alive.
 */
export class ReverseDns {
  private readonly options: Required<Omit<ReverseDnsOptions, "hostsPath" | "servers">>;
  private readonly hostsPath: string | null;
  private hosts: Map<string, string> | null = null;
  private readonly resolver: Resolver;
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inFlight = new Map<string, Promise<string | null>>();
  private readonly queue: Task[] = [];
  private active = 0;
  private closed = false;

  constructor(options: ReverseDnsOptions = {}) {
    this.options = {
      lookupTimeoutMs: options.lookupTimeoutMs ?? DEFAULTS.lookupTimeoutMs,
      concurrency: options.concurrency ?? DEFAULTS.concurrency,
      cacheTtlMs: options.cacheTtlMs ?? DEFAULTS.cacheTtlMs,
      negativeTtlMs: options.negativeTtlMs ?? DEFAULTS.negativeTtlMs,
      maxEntries: options.maxEntries ?? DEFAULTS.maxEntries,
      now: options.now ?? Date.now,
      timers: options.timers ?? realTimers,
    };
    this.hostsPath = options.hostsPath ?? null;
    // One try: a retry would outlast any budget a listing can afford. Bun raises too-small
    // timeouts to about a second, which is why resolve() also keeps its own clock.
    this.resolver = new Resolver({ timeout: this.options.lookupTimeoutMs, tries: 1 });
    if (options.servers !== undefined) this.resolver.setServers([...options.servers]);
  }

  /**
   * What is known now without waiting: a name, null for "known to have none" (or never looked
   * up, like unspecified addresses), undefined when a lookup would be needed.
   */
  cached(address: string): string | null | undefined {
    const key = lookupKey(address);
    if (key === null) return null;
    const local = this.localAnswer(key);
    if (local !== undefined) return local;
    const entry = this.cache.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= this.options.now()) {
      this.cache.delete(key);
      return undefined;
    }
    return entry.name;
  }

  /** The name of one address, or null when none is found within the per-lookup timeout. */
  async resolve(address: string): Promise<string | null> {
    const known = this.cached(address);
    if (known !== undefined) return known;
    const key = lookupKey(address);
    if (key === null) return null;
    return withTimeout(this.query(key), this.options.lookupTimeoutMs, () => null, this.options.timers);
  }

  /**
   * Names for many addresses within one total time budget. The returned map holds only the
   * addresses that got a name in time (keyed as given); it is never touched after the promise
   * settles, and the promise settles no later than the budget whatever DNS does.
   */
  async resolveAll(
    addresses: Iterable<string>,
    options: ResolveAllOptions = {},
  ): Promise<Map<string, string>> {
    const budgetMs = options.budgetMs ?? 1000;
    const result = new Map<string, string>();
    let open = true;
    const waits: Promise<void>[] = [];
    for (const address of new Set(addresses)) {
      const known = this.cached(address);
      if (typeof known === "string") result.set(address, known);
      if (known !== undefined) continue;
      const key = lookupKey(address);
      if (key === null) continue;
      waits.push(
        this.query(key).then((name) => {
          if (open && name !== null) result.set(address, name);
        }),
      );
    }
    if (waits.length > 0) {
      await withTimeout(Promise.all(waits), budgetMs, () => undefined, this.options.timers);
    }
    open = false;
    return result;
  }

  /**
   * Cancels every lookup in flight and drops the queue. Cached names and the hosts file still
   * answer afterwards; nothing new is sent.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const task of this.queue.splice(0)) task.settle(null);
    this.resolver.cancel();
  }

  /** Hosts file and never-asked addresses; undefined when DNS would have to answer. */
  private localAnswer(key: string): string | null | undefined {
    if (isUnspecified(key)) return null;
    const fromHosts = this.hostsTable().get(key);
    if (fromHosts !== undefined) return fromHosts;
    if (isLoopback(key)) return null;
    return undefined;
  }

  private hostsTable(): Map<string, string> {
    if (this.hosts === null) {
      let text = "";
      if (this.hostsPath !== null) {
        try {
          text = readFileSync(this.hostsPath, "utf8");
        } catch {
          // No hosts file (containers, odd Windows installs) just means DNS answers alone.
        }
      }
      this.hosts = parseHosts(text);
    }
    return this.hosts;
  }

  /** The shared lookup for a key; settles when DNS answers, fails or the resolver gives up. */
  private query(key: string): Promise<string | null> {
    if (this.closed) return Promise.resolve(null);
    const running = this.inFlight.get(key);
    if (running !== undefined) return running;
    const promise = new Promise<string | null>((settle) => {
      this.queue.push({ query: key, settle });
      this.pump();
    });
    this.inFlight.set(key, promise);
    void promise.then(() => this.inFlight.delete(key));
    return promise;
  }

  private pump(): void {
    while (this.active < this.options.concurrency && !this.closed) {
      const task = this.queue.shift();
      if (task === undefined) return;
      this.active++;
      this.resolver.reverse(task.query).then(
        (names) => {
          const name = names[0]?.replace(/\.$/, "") || null;
          this.remember(task.query, name);
          task.settle(name);
        },
        () => {
          // After close() every pending query fails with ECANCELLED; that says nothing about
          // the address, so it is not remembered.
          if (!this.closed) this.remember(task.query, null);
          task.settle(null);
        },
      ).finally(() => {
        this.active--;
        this.pump();
      });
    }
  }

  private remember(key: string, name: string | null): void {
    const ttl = name === null ? this.options.negativeTtlMs : this.options.cacheTtlMs;
    this.cache.delete(key);
    this.cache.set(key, { name, expiresAt: this.options.now() + ttl });
    // Maps iterate in insertion order, so the first key is the oldest.
    while (this.cache.size > this.options.maxEntries) {
      const oldest = this.cache.keys().next();
      if (oldest.done === true) break;
      this.cache.delete(oldest.value);
    }
  }
}

/**
 * The text a PTR lookup and the hosts table use for an address: canonical form, with
 * IPv4-mapped addresses reduced to their IPv4 part (their ip6.arpa names are never populated,
 * the in-addr.arpa ones are). Null when the text is not an address.
 */
function lookupKey(address: string): string | null {
  const ip = parseIP(address);
  if (ip === null) return null;
  const v4 = effectiveIPv4(ip);
  return v4 !== null ? formatIPv4(v4) : formatIP(ip);
}
