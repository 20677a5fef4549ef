/**
 * `sockwarden lsit`: a word after the program name is a process filter (as Tcpvcon's), so a
 * mistyped command would quietly list nothing. When the word names no process holding an
 * endpoint and is close to a command's name, it is taken for a mistyped command instead.
 */
import type { Platform } from "../engine/index.ts";
import { everyEndpoint, sourceChoice, withEngine } from "./engine-use.ts";
import { buildSelection } from "../filter/endpoint-filter.ts";
import { checkReadableFile } from "./user-files.ts";

/** How far a word may be from a command's name to be taken for it (letters changed, added, dropped or swapped). */
const MAX_DISTANCE = 2;

/**
 * The command names `word` is closest to, when within MAX_DISTANCE or a beginning of the name
 * (`li`: list and live); none for a PID or a glob, which are plainly process filters.
 */
export function commandSuggestions(word: string, commands: readonly string[]): string[] {
  const w = word.toLowerCase();
  if (w === "" || /^\d+$/.test(w) || /[*?]/.test(w)) return [];
  let best = Infinity;
  let found: string[] = [];
  for (const c of commands) {
    const d = c.startsWith(w) ? 0 : editDistance(w, c);
    if (d > MAX_DISTANCE || d > best) continue;
    if (d < best) {
      best = d;
      found = [];
    }
    found.push(c);
  }
  return found;
}

/** Optimal string alignment distance: a swap of two neighbouring letters counts as one edit. */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** "`sockwarden a`", "`sockwarden a` or `sockwarden b`", "`sockwarden a`, `sockwarden b` or …". */
function alternatives(commands: readonly string[]): string {
  const quoted = commands.map((c) => `\`sockwarden ${c}\``);
  return quoted.length === 1 ? quoted[0]! : `${quoted.slice(0, -1).join(", ")} or ${quoted[quoted.length - 1]}`;
}

export interface ProcessLookup {
  replay?: string;
  source?: string;
  allNamespaces?: boolean;
}

/**
 * Why `word` is taken for a mistyped command (one line), or null when it stands as a process
 * filter: it names a process holding an endpoint of any kind, or is close to no command.
 */
export function mistypedCommand(word: string | undefined, commands: readonly string[], where: ProcessLookup, platform: Platform): string | null {
  if (word === undefined) return null;
  const suggestions = commandSuggestions(word, commands);
  if (suggestions.length === 0 || anyProcessNamed(word, where, platform)) return null;
  return `no process named '${word}'; did you mean ${alternatives(suggestions)}?`;
}

function anyProcessNamed(word: string, where: ProcessLookup, platform: Platform): boolean {
  const named = buildSelection({ all: true, process: word });
  if (where.replay !== undefined) checkReadableFile(where.replay, "--replay");
  const options = { source: where.replay !== undefined ? "replay" : sourceChoice(where.source), replayFile: where.replay, allNamespaces: !!where.allNamespaces } as const;
  return withEngine(platform, options, (engine) => engine.snapshot(everyEndpoint()).endpoints.some(named.matches));
}
