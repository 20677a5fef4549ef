/**
 * No code of a rule file runs outside QuickJS, on each of the five ways the executable compiles
 * a rule: `rules check`, `rules test`, `run` at start, a reload when the file changes, and a
 * reload on SIGHUP. Each hostile rule asks the bundler to run code on the host while compiling;
 * had any of it run, a marker file would exist. Two macros:
 *   - execSync from node:child_process, with `with { type: "macro" }`;
 *   - the one allowed name, "sockwarden", as a macro: the bundler would look it up in the working
 *     directory's node_modules, where this test puts a package that leaves a marker when loaded.
 * The working directory also holds a bunfig.toml whose `preload` leaves a marker, and a .env that
 * switches on SOCKWARDEN_TRACE: an executable that read them would run host code at every start.
 * Each refusal must be one line, `file:line:col: message`, at the offending token.
 *
 * Needs root (the daemon runs in a private network namespace) and a built dist/sockwarden.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { BackgroundProcess, Netns, requireRoot } from "./helpers/netns.ts";
import { EXECUTABLE, REPO_ROOT, requireExecutable } from "./helpers/sockwarden.ts";
import { waitForSignalHandler } from "./helpers/process-ready.ts";

const EVENTS = path.join(REPO_ROOT, "test/fixtures/events/flood.ndjson");
const INTERVAL = "0.3";
let ns: Netns | undefined;
let dir: string;

const env = (): Record<string, string | undefined> => {
  const e: Record<string, string | undefined> = { ...process.env, NO_COLOR: "1" };
  delete e.SOCKWARDEN_TRACE;
  return e;
};
const marker = (what: string) => path.join(dir, `marker-${what}`);
const markers = () => fs.readdirSync(dir).filter((f) => f.startsWith("marker-"));
const lines = (text: string) => text.split("\n").filter((l) => l.length > 0);

const GOOD = `import { defineRule } from "sockwarden";\nexport default defineRule({ name: "guard", on: ["opened"], handle() {} });\n`;

interface Hostile {
  source: string;
  /** Where the refusal points (the token's first characters) and what it says. */
  token: string;
  message: string;
}

const hostile = (): Record<string, Hostile> => ({
  exec: {
    source:
      `import { defineRule } from "sockwarden";\n` +
      `import { execSync } from "node:child_process" with { type: "macro" };\n` +
      `const ran = execSync("touch ${marker("exec")}");\n` +
      `export default defineRule({ name: "guard", on: ["opened"], handle(e, act) { act.log(String(ran)); } });\n`,
    token: `"node:child_process"`,
    message: `rules can import only "sockwarden", not "node:child_process"`,
  },
  package: {
    source:
      `import { defineRule } from "sockwarden" with { type: "macro" };\n` +
      `export default defineRule({ name: "guard", on: ["opened"], handle() {} });\n`,
    token: "with {",
    message: `import attributes ("with { ... }") are refused in rules: with type "macro" the compiler would run the import on the host`,
  },
});

/** `label:line:col: message`, the place counted here from the source. */
function expected(label: string, h: Hostile): string {
  const at = h.source.indexOf(h.token);
  const before = h.source.slice(0, at).split("\n");
  return `${label}:${before.length}:${before[before.length - 1]!.length + 1}: ${h.message}`;
}

function cli(args: string[]) {
  requireExecutable();
  const r = spawnSync(EXECUTABLE, args, { cwd: dir, env: env() as NodeJS.ProcessEnv, encoding: "utf8", timeout: 60_000 });
  if (r.error) throw r.error;
  return r;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startDaemon(args: string[]): Promise<BackgroundProcess> {
  const d = ns!.spawn([EXECUTABLE, "run", "--interval", INTERVAL, "--audit-log", path.join(dir, "audit.log"), ...args], { cwd: dir, env: env() });
  const end = performance.now() + 30_000;
  while (!/running /.test(d.stderr) && performance.now() < end && !d.hasExited) await sleep(50);
  expect(d.stderr, "daemon start").toMatch(/running /);
  return d;
}

/** Reads the daemon's stdout (NDJSON records) until a report for `outcome` arrives. */
async function nextReport(d: BackgroundProcess, outcome: string): Promise<{ message: string }> {
  for (;;) {
    const record = JSON.parse(await d.nextLine(20_000)) as { kind: string; outcome?: string; message: string };
    if (record.kind === "report" && record.outcome === outcome) return record;
  }
}

beforeAll(async () => {
  requireRoot();
  requireExecutable();
  ns = await Netns.create("ct");
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "sw-compile-time-"));
  const pkg = path.join(dir, "node_modules", "sockwarden");
  fs.mkdirSync(pkg, { recursive: true });
  fs.writeFileSync(path.join(pkg, "package.json"), JSON.stringify({ name: "sockwarden", version: "0.0.0", main: "index.js" }));
  fs.writeFileSync(
    path.join(pkg, "index.js"),
    `require("node:fs").writeFileSync(${JSON.stringify(marker("package"))}, "loaded");\nexports.defineRule = (r) => r;\n`,
  );
  fs.writeFileSync(path.join(dir, "preload.js"), `require("node:fs").writeFileSync(${JSON.stringify(marker("bunfig"))}, "preloaded");\n`);
  fs.writeFileSync(path.join(dir, "bunfig.toml"), `preload = ["./preload.js"]\n`);
  fs.writeFileSync(path.join(dir, ".env"), "SOCKWARDEN_TRACE=1\n");
});

afterAll(async () => {
  await ns?.dispose();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe("no code of a rule runs while it is compiled", { timeout: 120_000 }, () => {
  it("rules check: refused at the token, nothing run", () => {
    for (const [name, h] of Object.entries(hostile())) {
      fs.writeFileSync(path.join(dir, `${name}.ts`), h.source);
      const r = cli(["rules", "check", `${name}.ts`]);
      expect(r.stderr, name).toBe(`${expected(`${name}.ts`, h)}\n`);
      expect(r.stdout).toBe("");
      expect(r.status).toBe(1);
      expect(markers(), name).toEqual([]);
    }
  });

  it("rules test: refused at the token, nothing run", () => {
    for (const [name, h] of Object.entries(hostile())) {
      fs.writeFileSync(path.join(dir, `${name}.ts`), h.source);
      const r = cli(["rules", "test", `${name}.ts`, "--events", EVENTS]);
      expect(lines(r.stderr), name).toEqual([expected(`${name}.ts`, h)]);
      expect(r.stdout).toBe("");
      expect(r.status).toBe(1);
      expect(markers(), name).toEqual([]);
    }
  });

  it("run: the daemon refuses to start, nothing run", async () => {
    for (const [name, h] of Object.entries(hostile())) {
      fs.writeFileSync(path.join(dir, `${name}.ts`), h.source);
      const r = await ns!.exec([EXECUTABLE, "run", "--interval", INTERVAL, "--audit-log", path.join(dir, "audit.log"), "--rule", `${name}.ts`], {
        cwd: dir,
        env: env(),
        timeoutMs: 30_000,
      });
      expect(lines(r.stderr), name).toEqual([`sockwarden: ${expected(`${name}.ts`, h)}`]);
      expect(r.code).not.toBe(0);
      expect(markers(), name).toEqual([]);
    }
  });

  it("a reload when the rule file changes: refused, the running version goes on, nothing run", async () => {
    fs.writeFileSync(path.join(dir, "guard.ts"), GOOD);
    const daemon = await startDaemon(["--rule", "guard.ts", "--sink", "stdout:ndjson"]);
    for (const [name, h] of Object.entries(hostile())) {
      fs.writeFileSync(path.join(dir, "guard.ts"), h.source);
      const report = await nextReport(daemon, "reload-failed");
      const place = expected("guard.ts", h);
      const [where, detail] = [place.slice(0, place.indexOf(": ")), place.slice(place.indexOf(": ") + 2)];
      expect(report.message, name).toBe(`rule guard (${where}): reload-failed: the new version does not load, the previous one keeps running: ${detail}`);
      expect(markers(), name).toEqual([]);
    }
    expect(daemon.hasExited).toBe(false);
    expect(await daemon.terminate(), daemon.stderr).toBe(true);
  });

  it("a reload on SIGHUP: refused, the running configuration goes on, nothing run", async () => {
    fs.writeFileSync(path.join(dir, "hup.ts"), GOOD);
    const config = path.join(dir, "hup.toml");
    const configFor = (rule: string) => `interval = ${INTERVAL}\naudit_log = "${path.join(dir, "audit.log")}"\n[rules]\nsources = ["${rule}"]\n`;
    fs.writeFileSync(config, configFor(path.join(dir, "hup.ts")));
    const daemon = await startDaemon(["--config", config]);
    await waitForSignalHandler(daemon.pid, "SIGHUP", 30_000, EXECUTABLE);
    for (const [name, h] of Object.entries(hostile())) {
      const rule = path.join(dir, `hup-${name}.ts`);
      fs.writeFileSync(rule, h.source);
      fs.writeFileSync(config, configFor(rule));
      const refusals = () => lines(daemon.stderr).filter((l) => l.includes(`reload refused`));
      const before = refusals().length;
      process.kill(daemon.pid, "SIGHUP");
      const end = performance.now() + 30_000;
      while (refusals().length === before && performance.now() < end && !daemon.hasExited) await sleep(50);
      const line = refusals()[before];
      expect(line, `no refusal; stderr:\n${daemon.stderr}`).toBeDefined();
      expect(line!.replace(/^sockwarden: reload refused.*?, the running configuration continues: /, ""), name).toBe(expected(rule, h));
      expect(markers(), name).toEqual([]);
    }
    expect(daemon.hasExited).toBe(false);
    expect(await daemon.terminate(), daemon.stderr).toBe(true);
  });

  it("the working directory's bunfig.toml and .env are not read, by any of them", () => {
    // Every command above started with them in its working directory.
    expect(markers()).toEqual([]);
    const r = cli(["rules", "check", path.join(REPO_ROOT, "test/fixtures/rules/good-counter.ts")]);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe("");
    expect(markers()).toEqual([]);
  });
});
