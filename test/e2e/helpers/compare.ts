/**
 * Canonical one-line keys for endpoints, so that sockwarden's JSON, ss's output and the
 * scenario's description can be compared as sorted lists (vitest then shows a readable diff).
 */

import type { Netns } from "./netns.ts";
import { type SsEntry, ssSnapshot } from "./ss.ts";

interface EndpointLike {
  protocol: string;
  family: number;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  state: string | null;
}

function hostPort(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

/** protocol/family local -> remote state */
export function endpointKey(e: EndpointLike): string {
  return `${e.protocol}/${e.family} ${hostPort(e.localAddress, e.localPort)} -> ${hostPort(
    e.remoteAddress,
    e.remotePort,
  )} ${e.state ?? "-"}`;
}

function pidList(pids: readonly number[]): string {
  return [...new Set(pids)].sort((a, b) => a - b).join(",");
}

/** The endpoint key plus the pids holding the socket. */
export function keyWithPids(e: EndpointLike & { pids: readonly number[] }): string {
  return `${endpointKey(e)} pids=[${pidList(e.pids)}]`;
}

export function sortedKeys<T>(items: readonly T[], key: (item: T) => string): string[] {
  return items.map(key).sort();
}

export interface StableSnapshot<T> {
  ss: SsEntry[];
  result: T;
  /** How many attempts it took to see ss report the same thing before and after. */
  attempts: number;
}

/**
 * Takes ss, then runs `take`, then ss again. When the two ss snapshots agree, the world did not
 * move while `take` ran and its result can be compared with that snapshot exactly. When they
 * differ (a state changed in between), the attempt is repeated, at most `maxAttempts` times.
 * The comparison itself is left to the caller and is never loosened.
 */
export async function stableAgainstSs<T>(
  ns: Netns,
  take: () => Promise<T>,
  maxAttempts = 3,
): Promise<StableSnapshot<T>> {
  const changes: string[] = [];
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const before = await ssSnapshot(ns);
    const result = await take();
    const after = await ssSnapshot(ns);
    const a = sortedKeys(before, keyWithPids);
    const b = sortedKeys(after, keyWithPids);
    if (a.join("\n") === b.join("\n")) return { ss: before, result, attempts: attempt };
    changes.push(
      `attempt ${attempt}: gone ${JSON.stringify(a.filter((k) => !b.includes(k)))}, new ${JSON.stringify(
        b.filter((k) => !a.includes(k)),
      )}`,
    );
  }
  throw new Error(`ss never showed the same sockets twice in a row:\n${changes.join("\n")}`);
}

/**
 * Finds the one endpoint with the same key as `target` (a described socket, an ss entry);
 * throws when it is missing or repeated.
 */
export function findDescribed<T extends EndpointLike>(
  endpoints: readonly T[],
  target: EndpointLike & { name?: string },
): T {
  const key = endpointKey(target);
  const matches = endpoints.filter((e) => endpointKey(e) === key);
  if (matches.length !== 1) {
    throw new Error(`expected exactly one endpoint ${key}${target.name ? ` (${target.name})` : ""}, found ${matches.length}`);
  }
  return matches[0] as T;
}
