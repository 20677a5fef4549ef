/**
 * `sockwarden rules check|test|init|list`: work with rules offline, on a box or on a laptop.
 */
import type { Argv } from "yargs";
import fs from "node:fs";
import path from "node:path";
import { escapeControl } from "../text/escape-control.ts";
import { RuleSet, checkRule, formatReport } from "../rules/rule-set.ts";
import type { RuleAction, RuleReport } from "../model/rule-action.ts";
import { loadRuleSource, resolveRuleSources, type RuleSource } from "../rules/rule-locations.ts";
import { checkImports } from "../rules/compile-rule.ts";
import { parseEventLines } from "../rules/event-json-input.ts";
import { BUNDLED_PLUGINS } from "../rules/bundled-plugins.ts";
import { endpointToJson } from "../format/endpoint-json.ts";
import { endpointKey } from "../monitor/endpoint-key.ts";
import type { Endpoint } from "../model/endpoint.ts";
import { FileError, RuleError, UsageError } from "../errors.ts";
import { stderr, stdout } from "./output.ts";
import { checkReadableFile, fileError, fileProblem, isFsError, readUserFile } from "./user-files.ts";
import { RULE_API_DECLARATIONS } from "../rules/api-declarations.ts";
import { checkRuleOptions, chooseOptionsTables, type RuleWithOptions } from "../rules/rule-options.ts";
import { formatTomlPath } from "../daemon/toml-locate.ts";

/** A line about a rule for people: file names and rules' texts are shown escaped. */
function say(line: string): void {
  stderr(`${escapeControl(line)}\n`);
}

type RulesArgs = { files?: string[]; events?: string; options?: string; dir?: string; force?: boolean; initial?: boolean };

/** The rules subcommands; `done` receives each one's exit code. */
export function rulesBuilder<T>(y: Argv<T>, done: (run: Promise<number>) => Promise<void>) {
  const handler = (fn: (a: RulesArgs) => Promise<number>) => (a: unknown) => done(fn(a as RulesArgs));
  return y
    .command(
      "check <files..>",
      "Compile, load and validate rules; errors as file:line:col",
      (c) => c.positional("files", { type: "string", array: true, describe: "Rule files, directories or bundled plugin names" }),
      handler((a) => check(a.files ?? [])),
    )
    .command(
      "test <files..>",
      "Replay recorded events (watch --ndjson) through rules; print their actions as JSON lines",
      (c) =>
        c
          .positional("files", { type: "string", array: true })
          .option("events", { type: "string", demandOption: true, describe: "NDJSON events recorded by `sockwarden watch --ndjson`; - for standard input" })
          .option("options", { type: "string", describe: 'JSON object of per-rule options: {"rule-name": {...}}' })
          .option("initial", {
            type: "boolean",
            describe: "The events were recorded with `watch --ndjson --initial`: the endpoints announced first go to start hooks",
          }),
      handler((a) => test(a.files ?? [], a.events!, a.options, !!a.initial)),
    )
    .command(
      "init [dir]",
      "Write type declarations, a tsconfig and an example rule for editors",
      (c) => c.positional("dir", { type: "string", default: ".", describe: "Directory to write into" }).option("force", { type: "boolean", describe: "Overwrite existing files" }),
      handler((a) => Promise.resolve(init(a.dir ?? ".", !!a.force))),
    )
    .command("list", "The bundled plugins", (c) => c, handler(() => Promise.resolve(list())))
    .demandCommand(1, "rules needs a subcommand: check, test, init or list");
}

/** `--events -` (joined to `--events=-` before parsing: see stdin-values.ts). */
function readStandardInput(): string {
  try {
    return fs.readFileSync(0, "utf8");
  } catch (err) {
    throw fileError("read", "standard input", fileProblem(err), "--events");
  }
}

async function check(files: string[]): Promise<number> {
  let bad = 0;
  for (const source of readableRuleSources(files)) {
    try {
      const info = await checkRule(source);
      const typeErrors = await typeErrorsOf(source);
      if (typeErrors.length > 0) {
        bad++;
        for (const e of typeErrors) say(e.message);
        continue;
      }
      stdout(`${escapeControl(source.label)}: ok (${info.name}: ${[info.handle ? `handles ${info.on.join(", ")}` : "", info.periodic ? `periodic every ${info.every} s` : "", info.start ? "start" : ""].filter(Boolean).join("; ")})\n`);
    } catch (err) {
      bad++;
      say(err instanceof RuleError ? err.message : `${source.label}: ${(err as Error).message}`);
    }
  }
  return bad > 0 ? 1 : 0;
}

async function test(files: string[], eventsFile: string, optionsJson: string | undefined, withInitial: boolean): Promise<number> {
  const sources = readableRuleSources(files);
  const text = eventsFile === "-" ? readStandardInput() : readUserFile(eventsFile, "--events");
  const events = parseEventLines(text, eventsFile === "-" ? "standard input" : eventsFile);
  let perRule: Record<string, unknown> = {};
  if (optionsJson !== undefined) {
    try {
      perRule = JSON.parse(optionsJson);
    } catch {
      throw new UsageError("--options must be a JSON object such as {\"smtp-guard\": {\"port\": 587}}");
    }
    if (!perRule || typeof perRule !== "object" || Array.isArray(perRule)) throw new UsageError("--options must be a JSON object");
  }
  const reports: RuleReport[] = [];
  // Time in a replay is the events' time, so periodic rules tick as they did when recorded.
  let now = events[0]?.time ?? Date.now();
  // Each rule in a process of its own: what a test shows of one rule must not depend on whether
  // another stalled a shared sandbox process (which costs its neighbours their state).
  const rules = new RuleSet({ onReport: (r) => reports.push(r), clock: () => now, isolation: "per-rule" });
  // Every report but a reload is a failure, start hooks' included: the exit status tells.
  let runtimeFailures = 0;
  const flush = () => {
    for (const r of reports.splice(0)) {
      if (r.kind !== "reloaded") runtimeFailures++;
      say(formatReport(r));
    }
  };
  let loadFailures = 0;
  try {
    // Options go by plugin or file name, else by the rule's declared name, as under `run`.
    const chosen = await chooseOptionsTables(sources, perRule, (s) => checkRule(s).then((info) => info.name, () => null));
    const withOptions: RuleWithOptions[] = [];
    const unchecked = new Set<string>();
    for (const [i, source] of sources.entries()) {
      const table = chosen[i]!;
      // A rule that does not load cannot check its options; its failure is told already.
      if (table !== null) unchecked.add(table);
      try {
        const typeErrors = await typeErrorsOf(source);
        if (typeErrors.length > 0) {
          // Not run: like a rule that does not compile, it is not what a test should show.
          loadFailures++;
          for (const e of typeErrors) say(e.message);
          continue;
        }
        const { info } = await rules.add(source, table === null ? {} : perRule[table]);
        withOptions.push({ name: info.name, label: source.label, table, optionTypes: (info as { optionTypes?: unknown }).optionTypes });
        if (table !== null) unchecked.delete(table);
      } catch (err) {
        loadFailures++;
        say(err instanceof RuleError ? err.message : (err as Error).message);
      }
    }
    const checked = Object.fromEntries(Object.entries(perRule).filter(([t]) => !unchecked.has(t) || withOptions.some((r) => r.table === t)));
    const problems = checkRuleOptions(checked, withOptions, []);
    if (problems.length > 0) {
      const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : "";
      throw new UsageError(`--options: ${formatTomlPath(problems[0]!.path)}: ${problems[0]!.message}${more}`);
    }
    // Rules that loaded still run when others did not; the exit status tells.
    const current = new Map<string, Endpoint>();
    const printAll = (actions: RuleAction[]) => {
      for (const a of actions) stdout(actionLine(a));
    };
    // `watch --initial` announces what exists at start as "opened" events, all with the start's
    // time; the first refresh comes at least one interval later.
    const initial: Endpoint[] = [];
    if (withInitial) {
      const t0 = events[0]?.time;
      while (events.length > 0 && events[0]!.type === "opened" && events[0]!.time === t0) initial.push(events.shift()!.endpoint);
    }
    for (const ep of initial) current.set(endpointKey(ep), ep);
    printAll(await rules.start(initial));
    flush();
    for (const e of events) {
      now = e.time;
      const key = endpointKey(e.endpoint);
      if (e.type === "closed") current.delete(key);
      else current.set(key, e.endpoint);
      printAll(await rules.tick([...current.values()], now));
      printAll(await rules.dispatch([e]));
      flush();
    }
    return loadFailures > 0 || runtimeFailures > 0 ? 1 : 0;
  } finally {
    rules.dispose();
  }
}

/** The TypeScript checker is loaded here, on first use: no other command needs its megabytes. */
async function typeErrorsOf(source: RuleSource): Promise<RuleError[]> {
  const text = await loadRuleSource(source);
  // A file the compiler would refuse (a macro, another module) is refused as it would be there.
  checkImports(text, source.label);
  const { typeCheckRule } = await import("../rules/type-check.ts");
  return typeCheckRule(text, source.label);
}

/** One JSON line per action: rule, action, reason, severity, and the endpoint or process. */
export function actionLine(a: RuleAction): string {
  const o: Record<string, unknown> = { rule: a.rule, action: a.action, reason: a.reason };
  if (a.action === "alert") o.severity = a.severity;
  if (a.action === "close") {
    if (a.seq !== undefined) o.seq = a.seq;
    o.endpoint = endpointToJson(a.endpoint);
  }
  if (a.action === "kill") o.process = a.process;
  return JSON.stringify(o) + "\n";
}

/**
 * The rules named on the command line, each file checked readable and each directory holding
 * at least one: a path that cannot be read is the user's input (exit 2), told before any rule runs.
 */
function readableRuleSources(args: readonly string[]): RuleSource[] {
  for (const arg of args) {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(arg);
    } catch (err) {
      // Not there: a bundled plugin's name, or resolveRuleSources says what it could have been.
      if ((err as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw fileError("read", arg, fileProblem(err));
    }
    if (!stat.isDirectory()) continue;
    try {
      fs.accessSync(arg, fs.constants.R_OK | fs.constants.X_OK);
    } catch (err) {
      throw fileError("read", arg, fileProblem(err));
    }
    if (resolveRuleSources([arg]).length === 0) throw new FileError(`no rule files (*.ts) in ${arg}`);
  }
  const sources = resolveRuleSources(args);
  for (const s of sources) if (s.kind === "file") checkReadableFile(s.path);
  return sources;
}

function init(dir: string, force: boolean): number {
  try {
    return writeInitFiles(dir, force);
  } catch (err) {
    if (!isFsError(err)) throw err;
    // mkdir names the part of the path it could not make; a write names the file.
    const where = err.path ?? dir;
    throw fileError(err.syscall === "mkdir" ? "create" : "write", where, fileProblem(err), "rules init");
  }
}

function writeInitFiles(dir: string, force: boolean): number {
  fs.mkdirSync(dir, { recursive: true });
  const files: Record<string, string> = {
    "sockwarden.d.ts": RULE_API_DECLARATIONS,
    "tsconfig.json": JSON.stringify(
      { compilerOptions: { target: "ES2022", module: "ESNext", moduleResolution: "bundler", strict: true, noEmit: true, lib: ["ES2023"], types: [] }, include: ["*.ts"] },
      null,
      2,
    ) + "\n",
    "example-rule.ts": EXAMPLE_RULE,
  };
  for (const [name, content] of Object.entries(files)) {
    const target = path.join(dir, name);
    if (fs.existsSync(target) && !force) {
      stderr(`${target} exists; left as it is (--force overwrites)\n`);
      continue;
    }
    fs.writeFileSync(target, content);
    stdout(`wrote ${target}\n`);
  }
  return 0;
}

function list(): number {
  const names = Object.keys(BUNDLED_PLUGINS).sort();
  const width = Math.max(...names.map((n) => n.length));
  for (const n of names) stdout(`${n.padEnd(width)}  ${BUNDLED_PLUGINS[n]!.description}\n`);
  return 0;
}

const EXAMPLE_RULE = `import { defineRule, isPrivate } from "sockwarden";

// Alert when anything connects to a public address on a port other than 80 or 443.
export default defineRule({
  name: "example-outbound",
  description: "Alert on outbound connections to public addresses on unusual ports",
  on: ["opened"],
  options: { allowedPorts: [80, 443] },
  handle(event, act, ctx) {
    const ep = event.endpoint;
    if (ep.protocol !== "tcp" || ep.state !== "ESTABLISHED" || isPrivate(ep.remoteAddress)) return;
    if (!ctx.options.allowedPorts.includes(ep.remotePort)) {
      act.alert(\`\${ep.process?.name ?? "unknown"} connected to \${ep.remoteAddress}:\${ep.remotePort}\`, "warning");
    }
  },
});
`;
