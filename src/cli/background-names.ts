/**
 * Host names for long-running views: lookups run in the background with a cache, and whatever
 * is known at print time is used, so a slow or absent resolver never delays a refresh.
 */
import { ReverseDns } from "../net/reverse-dns.ts";
import { isUnspecified } from "../net/address.ts";
import type { Endpoint } from "../model/endpoint.ts";

export class BackgroundNames {
  readonly hosts = new Map<string, string>();
  private readonly dns: ReverseDns;
  private readonly asked = new Set<string>();
  private closed = false;

  constructor(hostsPath: string) {
    this.dns = new ReverseDns({ hostsPath });
  }

  /** Starts lookups for addresses not asked about before; returns at once. */
  want(endpoints: Iterable<Endpoint>): void {
    if (this.closed) return;
    const fresh: string[] = [];
    for (const ep of endpoints) {
      for (const a of [ep.localAddress, ep.remoteAddress]) {
        if (this.asked.has(a) || isUnspecified(a)) continue;
        // Bounded memory on a busy box: forget what was asked after many distinct addresses.
        if (this.asked.size > 50_000) this.asked.clear();
        this.asked.add(a);
        fresh.push(a);
      }
    }
    if (fresh.length === 0) return;
    this.dns.resolveAll(fresh, { budgetMs: 5000 }).then(
      (found) => {
        for (const [addr, name] of found) this.hosts.set(addr, name);
      },
      () => {},
    );
  }

  close(): void {
    this.closed = true;
    this.dns.close();
  }
}
