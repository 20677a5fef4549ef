/** Reverse DNS for a listing, bounded by a total time budget so it never holds the command up. */
import type { Endpoint } from "../model/endpoint.ts";
import { ReverseDns } from "../net/reverse-dns.ts";
import { isUnspecified } from "../net/address.ts";

export async function resolveHostNames(endpoints: readonly Endpoint[], budgetMs: number, hostsPath: string): Promise<Map<string, string>> {
  const addresses = new Set<string>();
  for (const ep of endpoints) {
    if (!isUnspecified(ep.localAddress)) addresses.add(ep.localAddress);
    if (!isUnspecified(ep.remoteAddress)) addresses.add(ep.remoteAddress);
  }
  if (addresses.size === 0 || budgetMs <= 0) return new Map();
  const dns = new ReverseDns({ hostsPath });
  try {
    return await dns.resolveAll(addresses, { budgetMs });
  } finally {
    // Lookups still pending would otherwise keep the process alive until they time out.
    dns.close();
  }
}
