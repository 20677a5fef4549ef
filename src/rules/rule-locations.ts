/**
 * Where a rule's text comes from: a file, a directory of .ts files, or a plugin bundled in the
 * executable (by name).
 */
import fs from "node:fs";
import path from "node:path";
import { RuleError, UsageError } from "../errors.ts";
import { BUNDLED_PLUGINS } from "./bundled-plugins.ts";

export type RuleSource = { kind: "file"; path: string; label: string } | { kind: "plugin"; name: string; label: string };

/** Expands command-line rule arguments: files, directories (their *.ts) and bundled names. */
export function resolveRuleSources(args: readonly string[]): RuleSource[] {
  const out: RuleSource[] = [];
  for (const arg of args) {
    if (Object.hasOwn(BUNDLED_PLUGINS, arg) && !fs.existsSync(arg)) {
      out.push({ kind: "plugin", name: arg, label: `plugin:${arg}` });
      continue;
    }
    let stat: fs.Stats;
    try {
      stat = fs.statSync(arg);
    } catch {
      const names = Object.keys(BUNDLED_PLUGINS).join(", ");
      throw new UsageError(`no rule file, directory or bundled plugin named '${arg}' (bundled: ${names})`);
    }
    if (stat.isDirectory()) {
      const files = fs
        .readdirSync(arg)
        .filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts") && !f.endsWith(".test.ts"))
        .sort();
      for (const f of files) out.push({ kind: "file", path: path.join(arg, f), label: path.join(arg, f) });
    } else {
      out.push({ kind: "file", path: arg, label: arg });
    }
  }
  return out;
}

export async function loadRuleSource(source: RuleSource): Promise<string> {
  if (source.kind === "plugin") {
    const p = BUNDLED_PLUGINS[source.name];
    if (!p) throw new RuleError(source.label, null, null, "no such bundled plugin");
    return p.source;
  }
  try {
    return fs.readFileSync(source.path, "utf8");
  } catch (err) {
    throw new RuleError(source.label, null, null, `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}
