/**
 * Rule options checked against the rule's declared defaults, by the real executable: at start a
 * value of the wrong type, an unknown key or options for a rule that is not loaded end `run` with
 * exit 2 and one line naming the file, the line and the key; on SIGHUP the same are refused and
 * the running configuration goes on, the rule keeping the options it had; `rules test --options`
 * refuses them too.
 *
 * The daemon's rule logs the port it was given on every periodic tick, with a count, so what it
 * runs with is read from its stdout sink. Needs root (network namespace) and a built
 * dist/sockwarden.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { BackgroundProcess, Netns, requireRoot } from "./helpers/netns.ts";
import { EXECUTABLE, REPO_ROOT, requireExecutable } from "./helpers/sockwarden.ts";

let ns: Netns | undefined;
let dir: string;

beforeAll(async () => {
  requireRoot();
  requireExecutable();
  ns = await Netns.create("ro");
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "sw-rule-options-"));
});

afterAll(async () => {
  await ns?.dispose();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `run` with this configuration, to its end; it is expected to refuse to start. */
async function refusedAtStart(name: string, toml: string): Promise<{ code: number | null; stderr: string; config: string }> {
  const config = path.join(dir, `${name}.toml`);
  fs.writeFileSync(config, toml);
  const r = await ns!.exec([EXECUTABLE, "run", "--config", config, "--audit-log", path.join(dir, `${name}.audit`)], { timeoutMs: 30_000 });
  return { code: r.code, stderr: r.stderr, config };
}

describe("rule options at start", { timeout: 60_000 }, () => {
  it("a value of another type than the rule's default: exit 2, file, line and key", async () => {
    const r = await refusedAtStart("type", `interval = 1\n[rules]\nsources = ["smtp-guard"]\n\n[rules.options.smtp-guard]\nmailServers = ["postfix"]\nport = "twenty-five"\n`);
    expect(r.stderr).toBe(`sockwarden: ${r.config}:7: rules.options.smtp-guard.port: expected a number (the rule's default is 25), not "twenty-five"\n`);
    expect(r.code).toBe(2);
  });

  it("a list element of another type than the default's elements", async () => {
    const r = await refusedAtStart("element", `[rules]\nsources = ["smtp-guard"]\n[rules.options.smtp-guard]\nmailServers = [\n  "postfix",\n  25,\n]\n`);
    expect(r.stderr).toBe(
      `sockwarden: ${r.config}:6: rules.options.smtp-guard.mailServers[1]: expected a string (as in the rule's default ["master", "smtpd", "smtp", …]), not 25\n`,
    );
    expect(r.code).toBe(2);
  });

  it("options for a rule that is not loaded (a misspelt name)", async () => {
    const r = await refusedAtStart("unloaded", `[rules]\nsources = ["smtp-guard"]\n\n[rules.options.smtp-gaurd]\nport = 25\n`);
    expect(r.stderr).toBe(`sockwarden: ${r.config}:4: rules.options.smtp-gaurd: no loaded rule is named smtp-gaurd (loaded: smtp-guard); did you mean smtp-guard?\n`);
    expect(r.code).toBe(2);
  });

  it("a key the rule does not have", async () => {
    const r = await refusedAtStart("unknown", `[rules]\nsources = ["smtp-guard"]\noptions.smtp-guard.prot = 25\n`);
    expect(r.stderr).toBe(`sockwarden: ${r.config}:3: rules.options.smtp-guard.prot: unknown option (smtp-guard takes: mailServers, port)\n`);
    expect(r.code).toBe(2);
  });

  it("a TOML syntax error names its own line", async () => {
    const r = await refusedAtStart("syntax", `interval = 1.0\nsinks = ["stdout"\n`);
    expect(r.stderr).toBe(`sockwarden: ${r.config}:2: the list opened on line 2 is not closed with ']'\n`);
    expect(r.code).toBe(2);
  });
});

describe("rule options on SIGHUP", { timeout: 120_000 }, () => {
  it("are refused with file, line and key while the rule goes on with the options it has; good ones then take", async () => {
    const rule = path.join(dir, "guard.ts");
    // Its file's name is not its own: its options go under the rule's name.
    fs.writeFileSync(
      rule,
      `import { defineRule } from "sockwarden";
let n = 0;
export default defineRule({ name: "guard-rule", every: 0.1, options: { port: 25 }, periodic(_list, act, ctx) {
  act.log(\`port \${ctx.options.port} #\${++n}\`);
} });
`,
    );
    const config = path.join(dir, "hup.toml");
    const write = (options: string) =>
      fs.writeFileSync(config, `interval = 0.3\naudit_log = "${path.join(dir, "hup.audit")}"\nsinks = ["stdout:ndjson"]\n[rules]\nsources = ["${rule}"]\n${options}`);
    write(`[rules.options.guard-rule]\nport = 2525\n`);
    const daemon = ns!.spawn([EXECUTABLE, "run", "--config", config]);
    try {
      /** The next log line of the rule that says `port`, with its count. */
      const nextPort = async (port: number) => {
        for (;;) {
          const record = JSON.parse(await daemon.nextLine(15_000)) as { kind: string; message?: string };
          const m = record.kind === "log" ? /^port (\S+) #(\d+)$/.exec(record.message ?? "") : null;
          if (!m) continue;
          expect(m[1], daemon.stderr).toBe(String(port));
          return Number(m[2]);
        }
      };
      const before = await nextPort(2525);
      const refusals = () => daemon.stderr.split("\n").filter((l) => l.includes("reload refused"));
      const hup = async (n: number) => {
        process.kill(daemon.pid, "SIGHUP");
        const end = performance.now() + 30_000;
        while (refusals().length < n && performance.now() < end && !daemon.hasExited) await sleep(50);
        return refusals()[n - 1];
      };

      write(`[rules.options.guard-rule]\nport = "twenty-five"\n`);
      expect(await hup(1), daemon.stderr).toBe(
        `sockwarden: reload refused, the running configuration continues: ${config}:7: rules.options.guard-rule.port: expected a number (the rule's default is 25), not "twenty-five"`,
      );
      // The same rule, with the same state and options, goes on.
      expect(await nextPort(2525)).toBeGreaterThan(before);

      write(`[rules.options.guard-rul]\nport = 2626\n`);
      expect(await hup(2), daemon.stderr).toBe(
        `sockwarden: reload refused, the running configuration continues: ${config}:6: rules.options.guard-rul: no loaded rule is named guard-rul (loaded: guard-rule); did you mean guard-rule?`,
      );
      expect(await nextPort(2525)).toBeGreaterThan(before);

      write(`[rules.options.guard-rule]\nport = 2626\n`);
      process.kill(daemon.pid, "SIGHUP");
      // Lines of the old rule may still be on their way; the new one starts counting afresh.
      for (;;) {
        const record = JSON.parse(await daemon.nextLine(15_000)) as { kind: string; message?: string };
        if (record.kind === "log" && /^port 2626 #\d+$/.test(record.message ?? "")) break;
      }
      expect(daemon.stderr).toMatch(/reloaded: guard-rule/);
      expect(refusals()).toHaveLength(2);
    } finally {
      expect(await daemon.terminate(), daemon.stderr).toBe(true);
    }
  });
});

describe("rules test --options", { timeout: 60_000 }, () => {
  it("refuses options of another type, and options for a rule it was not given", async () => {
    const events = path.join(REPO_ROOT, "test/fixtures/events/flood.ndjson");
    const test = (options: object) => ns!.exec([EXECUTABLE, "rules", "test", "smtp-guard", "--events", events, "--options", JSON.stringify(options)], { timeoutMs: 60_000 });
    const wrong = await test({ "smtp-guard": { port: "twenty-five" } });
    expect(wrong.stderr).toBe(`sockwarden: --options: smtp-guard.port: expected a number (the rule's default is 25), not "twenty-five"\n`);
    expect(wrong.code).toBe(2);
    const other = await test({ "smtp-guard": { port: 2525 }, "new-listener": {} });
    expect(other.stderr).toBe("sockwarden: --options: new-listener: no loaded rule is named new-listener (loaded: smtp-guard)\n");
    expect(other.code).toBe(2);
    const right = await test({ "smtp-guard": { port: 2525 } });
    expect(right.stderr).toBe("");
    expect(right.code).toBe(0);
  });
});
