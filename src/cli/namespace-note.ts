/**
 * `list holdN` lists sockets of this network namespace only, so a process living in another one
 * shows nothing at all. When a process filter found nothing here, this looks in the other
 * namespaces and says where that process's endpoints are and how to list them.
 */
import type { Platform } from "../engine/index.ts";
import { everyEndpoint, sourceChoice } from "./engine-use.ts";
import type { Endpoint, NamespaceTag } from "../model/endpoint.ts";
import type { SocketEngine } from "../engine/types.ts";
import { buildSelection } from "../filter/endpoint-filter.ts";

/** A namespace as `--netns` takes it: its `ip netns` name, else its inode. */
export function namespaceWord(tag: NamespaceTag): string {
  return tag.name ?? String(tag.inode);
}

/** Whether an endpoint is in the namespace `word` names (an `ip netns` name or an inode). */
export function inNamespaceNamed(ep: Endpoint, word: string): boolean {
  const tag = ep.namespace;
  return !!tag && (tag.name === word || String(tag.inode) === word);
}

/**
 * One line for stderr, or null: the process `query` (name glob or PID) holds endpoints in other
 * network namespaces. Looking there needs CAP_SYS_ADMIN; without it a PID is still placed by its
 * /proc entry, and a name is not looked for.
 */
export function otherNamespaceNote(query: string, matches: (ep: Endpoint) => boolean, platform: Platform, source?: string): string | null {
  const named = buildSelection({ all: true, process: query });
  let engine: SocketEngine;
  try {
    engine = platform.createEngine({ source: sourceChoice(source), allNamespaces: true });
  } catch {
    return pidElsewhere(query, platform, source);
  }
  try {
    const own = engine.processDetails?.(process.pid)?.netns ?? null;
    const snapshot = engine.snapshot(everyEndpoint());
    const elsewhere = snapshot.endpoints.filter((ep) => named.matches(ep) && ep.namespace && ep.namespace.inode !== own);
    if (elsewhere.length === 0) return null;
    const words = [...new Set(elsewhere.map((ep) => namespaceWord(ep.namespace!)))].sort();
    const where = words.length === 1 ? `another network namespace, ${words[0]}` : `other network namespaces: ${words.join(", ")}`;
    // Counted as the listing would count them there, with the other options given.
    const listed = elsewhere.filter(matches).length;
    const who = /^\d+$/.test(query) ? `process ${query}` : `'${query}'`;
    if (listed === 0) return `${who} lives in ${where}, where none of its endpoints match these options either`;
    return `${who} has ${listed} such endpoint(s) in ${where}, none here; list them with -N, or --netns ${words[0]}`;
  } catch {
    return pidElsewhere(query, platform, source);
  } finally {
    engine.close();
  }
}

function pidElsewhere(query: string, platform: Platform, source?: string): string | null {
  if (!/^\d+$/.test(query)) return null;
  const pid = Number(query);
  let engine: SocketEngine;
  try {
    engine = platform.createEngine({ source: sourceChoice(source) });
  } catch {
    return null;
  }
  try {
    const theirs = engine.processDetails?.(pid)?.netns ?? null;
    const own = engine.processDetails?.(process.pid)?.netns ?? null;
    if (theirs === null || own === null || theirs === own) return null;
    return `process ${pid} is in another network namespace (${theirs}), whose sockets are not listed here; list them with -N, or --netns ${theirs} (as root)`;
  } finally {
    engine.close();
  }
}
