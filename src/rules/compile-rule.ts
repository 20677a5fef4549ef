/**
 * Turns a rule's TypeScript into JavaScript for the sandbox, inside the executable: Bun's
 * bundler strips types and writes a source map, which later maps errors back to the user's
 * lines. The only import a rule may make is "sockwarden"; anything else is refused here, with
 * the line that asked for it.
 */
import path from "node:path";
import { RuleError } from "../errors.ts";
import { LineMap } from "./source-map.ts";

export interface CompiledRule {
  /** Where the rule came from: a file path, or "plugin:NAME" for a bundled one. */
  file: string;
  code: string;
  lines: LineMap;
  /** Where the source says `export default`: the place to report what the definition gets wrong. */
  exportAt?: { line: number; column: number } | null;
}

const API_MODULE = "sockwarden";
const MAX_SOURCE_BYTES = 1 << 20;

export async function compileRule(source: string, file: string): Promise<CompiledRule> {
  if (source.length > MAX_SOURCE_BYTES) throw new RuleError(file, null, null, `a rule may be at most ${MAX_SOURCE_BYTES} bytes`);
  // The entry point only needs a name the bundler can resolve from an existing directory;
  // the plugin below supplies the text, so bundled rules need no file on disk.
  // An absolute path on every OS (on Windows "/" alone is not: it would resolve against nothing).
  const entry = path.resolve(path.sep, `sockwarden-rule-${path.basename(file).replace(/[^\w.-]/g, "_")}`);
  const refused: { line: number | null; column: number | null; what: string }[] = [];
  let result: Awaited<ReturnType<typeof Bun.build>>;
  try {
    result = await Bun.build({
      entrypoints: [entry],
      root: path.dirname(entry),
      format: "esm",
      target: "browser",
      sourcemap: "external",
      minify: false,
      external: [API_MODULE],
      throw: false,
      plugins: [
        {
          name: "sockwarden-rule",
          setup(build) {
            build.onResolve({ filter: /.*/ }, (args) => {
              if (args.path === entry) return { path: entry, namespace: "rule" };
              if (args.path === API_MODULE) return { path: API_MODULE, external: true };
              refused.push({ line: null, column: null, what: args.path });
              return { path: args.path, namespace: "refused" };
            });
            build.onLoad({ filter: /.*/, namespace: "rule" }, () => ({ contents: source, loader: "ts" }));
            build.onLoad({ filter: /.*/, namespace: "refused" }, () => ({ contents: "", loader: "js" }));
          },
        },
      ],
    });
  } catch (err) {
    throw fromBuildError(file, err);
  }
  // A refused import first: the build then also fails, on names the empty stand-in lacks.
  if (refused.length > 0) {
    const what = refused[0]!.what;
    const at = lineOf(source, what);
    throw new RuleError(file, at?.line ?? null, at?.column ?? null, `rules can import only "sockwarden", not "${what}"`);
  }
  if (!result.success) {
    const first = result.logs.find((l) => l.level === "error") ?? result.logs[0];
    throw fromBuildLog(file, first);
  }
  const js = result.outputs.find((o) => o.kind === "entry-point");
  const map = result.outputs.find((o) => o.kind === "sourcemap");
  if (!js) throw new RuleError(file, null, null, "the transpiler produced no code");
  const code = await js.text();
  const mappings = map ? (JSON.parse(await map.text()).mappings as string) : "";
  return { file, code, lines: new LineMap(mappings), exportAt: exportPosition(source) };
}

interface BuildLogLike {
  message?: string;
  position?: { line?: number; column?: number; lineText?: string } | null;
}

function fromBuildLog(file: string, log: unknown): RuleError {
  const l = (log ?? {}) as BuildLogLike;
  const message = (l.message ?? String(log)).split("\n")[0]!;
  const pos = l.position;
  // Bun reports 1-based lines and 0-based columns.
  return new RuleError(file, pos?.line ?? null, pos?.column !== undefined ? pos.column + 1 : null, message);
}

function fromBuildError(file: string, err: unknown): RuleError {
  const e = err as { errors?: unknown[]; message?: string } | undefined;
  if (e?.errors?.length) return fromBuildLog(file, e.errors[0]);
  if (err instanceof AggregateError && err.errors.length) return fromBuildLog(file, err.errors[0]);
  return new RuleError(file, null, null, (e?.message ?? String(err)).split("\n")[0]!);
}

function lineOf(source: string, needle: string): { line: number; column: number } | null {
  const lines = source.split("\n");
  // The quoted name after `from`, `import` or `import(` first: a comment may name it earlier.
  const quoted = `["'\`]${needle.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}["'\`]`;
  for (const re of [new RegExp(`(?:\\bfrom|\\bimport)\\s*\\(?\\s*(${quoted})`), new RegExp(`(${quoted})`)]) {
    for (let i = 0; i < lines.length; i++) {
      const m = re.exec(lines[i]!);
      if (m) return { line: i + 1, column: m.index + m[0].length - m[1]!.length + 1 };
    }
  }
  return null;
}

function exportPosition(source: string): { line: number; column: number } | null {
  const lines = source.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\s*)export\s+default\b/.exec(lines[i]!);
    if (m) return { line: i + 1, column: m[1]!.length + 1 };
  }
  return null;
}
