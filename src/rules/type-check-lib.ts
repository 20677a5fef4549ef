/**
 * The ECMAScript library declarations a rule is type-checked against: lib.es2023.d.ts and every
 * lib file it references, read from the typescript package. type-check.ts imports this as a
 * macro, so the bundler runs it while building and the executable carries the texts, not the
 * package's lib folder; run from the sources (tests), it reads them on the first check.
 *
 * ES2023 because that is what the sandbox's QuickJS implements; no DOM and no Node types, since
 * a rule has no host objects.
 */
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

/** The lib file that names all the others. */
const ROOT_LIB = "lib.es2023.d.ts";

export interface EsLibrary {
  root: string;
  /** File name (as TypeScript names it, e.g. lib.es2015.core.d.ts) to text. */
  files: Record<string, string>;
}

export function esLibrary(): EsLibrary {
  const dir = path.dirname(createRequire(import.meta.url).resolve(`typescript/lib/${ROOT_LIB}`));
  const out: Record<string, string> = {};
  const pending = [ROOT_LIB];
  while (pending.length > 0) {
    const name = pending.pop()!;
    if (Object.hasOwn(out, name)) continue;
    const text = fs.readFileSync(path.join(dir, name), "utf8");
    out[name] = text;
    for (const m of text.matchAll(/^\/\/\/\s*<reference\s+lib="([\w.-]+)"\s*\/>/gm)) pending.push(`lib.${m[1]!.toLowerCase()}.d.ts`);
  }
  return { root: ROOT_LIB, files: out };
}
