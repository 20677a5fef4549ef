/**
 * `sockwarden run` changing what it runs while it runs, and what it checks before it starts:
 * a changed metrics address is served after SIGHUP (or, when it cannot be bound, the old one
 * stays and the sinks are told); a refused reload reaches the sinks; a rule file dropped into or
 * removed from a rule directory is loaded or unloaded and told; an edited rule's reload record
 * says what was reloaded; an audit log or file sink that cannot be written stops the start with
 * one line.
 *
 * Needs root (network namespace, a second user) and a built dist/sockwarden.
 */
import { beforeAll, describe, expect, it } from "vitest";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { BackgroundProcess } from "./helpers/netns.ts";
import { EXECUTABLE } from "./helpers/sockwarden.ts";
import { daemonTestbed } from "./helpers/daemon.ts";
import { AS_TARGET, STACK_FRAME } from "./helpers/privileges.ts";
import { waitFor } from "./helpers/wait-for.ts";

const INTERVAL = 0.3;
const bed = daemonTestbed("rl", "sw-reload-");

beforeAll(() => {
  fs.chmodSync(bed.dir, 0o755);
});

/** Polls `probe` until it returns a value, at most `timeoutMs`; throws saying what it waited for. */

interface SinkLine {
  kind: string;
  rule?: string;
  outcome?: string;
  severity?: string;
  message: string;
}

/** The complete lines of a file sink so far. */
function sinkLines(file: string): SinkLine[] {
  if (!fs.existsSync(file)) return [];
  const parts = fs.readFileSync(file, "utf8").split("\n");
  parts.pop();
  return parts.filter(Boolean).map((l) => JSON.parse(l) as SinkLine);
}

/** Waits for a line of the sink that `match` accepts and returns it. */
const sinkLine = (file: string, daemon: BackgroundProcess, what: string, match: (l: SinkLine) => boolean) =>
  waitFor(() => `${what} in ${file}; it has:\n${fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "(nothing)"}\ndaemon stderr:\n${daemon.stderr}`, () => sinkLines(file).find(match));

const startDaemon = (args: string[]) => bed.startDaemon(["--interval", String(INTERVAL), ...args]);

/** A TCP listener on 127.0.0.1:port in the namespace, until stopped. */
async function listen(port: number): Promise<BackgroundProcess> {
  const p = bed.ns.spawn([
    "/usr/bin/python3", "-c",
    `import socket,sys\ns=socket.socket()\ns.bind(("127.0.0.1",${port}))\ns.listen()\nprint("ready",flush=True)\nsys.stdin.read()`,
  ]);
  bed.running.push(p);
  expect(await p.nextLine(10_000)).toBe("ready");
  return p;
}

/** GET /metrics on the port from inside the namespace: the text, or the error's name. */
async function scrape(port: number): Promise<{ ok: true; text: string } | { ok: false; error: string }> {
  const script = `import urllib.request,sys
try:
    print(urllib.request.urlopen("http://127.0.0.1:${port}/metrics", timeout=5).read().decode())
except Exception as e:
    print("ERROR", type(getattr(e, "reason", e)).__name__); sys.exit(3)`;
  const r = await bed.ns.exec(["/usr/bin/python3", "-c", script], { timeoutMs: 10_000 });
  return r.code === 0 ? { ok: true, text: r.stdout } : { ok: false, error: r.stdout.trim() || r.stderr.trim() };
}

/** A rule that alerts when a listener opens on `port`. */
const listenerRule = (name: string, port: number) => `import { defineRule } from "sockwarden";
export default defineRule({ name: "${name}", on: ["opened"], handle(e, act) {
  if (e.endpoint.state === "LISTEN" && e.endpoint.localPort === ${port}) act.alert("${name} saw a listener on ${port}", "info");
} });
`;

const config = (lines: string[]) => `${lines.join("\n")}\n`;

// Each test waits for the daemon, its listeners and its records, each wait bounded; together they
// can outlast the suite's default test time on a loaded machine.
describe("sockwarden run: reloads", { timeout: 120_000 }, () => {
  it("SIGHUP moves metrics to a changed address; one that cannot be bound keeps the old and tells the sinks", async () => {
    const file = path.join(bed.dir, "metrics-sink.ndjson");
    const conf = path.join(bed.dir, "metrics.toml");
    const base = [`interval = ${INTERVAL}`, `audit_log = "${path.join(bed.dir, "audit-m.log")}"`, `sinks = ["file:${file}"]`, "[rules]", `sources = ["smtp-guard"]`];
    fs.writeFileSync(conf, config([`metrics = "127.0.0.1:9471"`, ...base]));
    const daemon = await startDaemon(["--config", conf]);
    expect((await scrape(9471)).ok, daemon.stderr).toBe(true);

    fs.writeFileSync(conf, config([`metrics = "127.0.0.1:9472"`, ...base]));
    process.kill(daemon.pid, "SIGHUP");
    const moved = await waitFor(() => `metrics on 9472; stderr:\n${daemon.stderr}`, async () => {
      const r = await scrape(9472);
      return r.ok ? r.text : undefined;
    });
    expect(moved).toMatch(/^sockwarden_sighups_total 1$/m);
    expect(await scrape(9471)).toEqual({ ok: false, error: "ERROR ConnectionRefusedError" });
    // Its stderr comes through a pipe of its own: what it says may arrive after what it did.
    await waitFor(() => `the reloaded line; stderr:\n${daemon.stderr}`, () => (/^sockwarden: reloaded: smtp-guard; metrics on 127\.0\.0\.1:9472$/m.test(daemon.stderr) ? true : undefined));

    // Taken by someone else: the daemon keeps serving where it was, and says why.
    await listen(9473);
    fs.writeFileSync(conf, config([`metrics = "127.0.0.1:9473"`, ...base]));
    process.kill(daemon.pid, "SIGHUP");
    const refused = await sinkLine(file, daemon, "a reload-refused record", (l) => l.outcome === "reload-refused");
    expect(refused).toMatchObject({ kind: "report", severity: "warning" });
    expect(refused.message).toBe("reload refused in part, metrics stay on 127.0.0.1:9472: cannot serve metrics on 127.0.0.1:9473: the port is in use");
    await waitFor(() => `the refusal on stderr; it has:\n${daemon.stderr}`, () => (daemon.stderr.includes(`sockwarden: ${refused.message}\n`) ? true : undefined));
    expect((await scrape(9472)).ok, daemon.stderr).toBe(true);
    expect(daemon.hasExited).toBe(false);
  });

  it("a SIGHUP whose configuration does not load is told to the sinks, with the reason", async () => {
    const file = path.join(bed.dir, "refused-sink.ndjson");
    const conf = path.join(bed.dir, "refused.toml");
    const base = [`interval = ${INTERVAL}`, `audit_log = "${path.join(bed.dir, "audit-r.log")}"`, `sinks = ["file:${file}"]`, "[rules]", `sources = ["smtp-guard"]`];
    fs.writeFileSync(conf, config(base));
    const daemon = await startDaemon(["--config", conf]);
    fs.writeFileSync(conf, config([...base, "[protect]", "portz = [22]"]));
    process.kill(daemon.pid, "SIGHUP");
    const refused = await sinkLine(file, daemon, "a reload-refused record", (l) => l.outcome === "reload-refused");
    expect(refused).toMatchObject({ kind: "report", severity: "warning" });
    expect(refused.message).toBe(`reload refused, the running configuration continues: ${conf}:7: protect.portz: unknown key (known: ports, addresses, processes, paths)`);
    // The sink's record may be read before the stderr line has come through the pipe.
    await waitFor(() => `the refusal on stderr; it has:\n${daemon.stderr}`, () => (daemon.stderr.includes(`sockwarden: ${refused.message}\n`) ? true : undefined));
  });

  it("SIGHUP moves the audit log to a changed file; a changed sensor stays until a restart, and the sinks are told", async () => {
    const before = path.join(bed.dir, "audit-before.log");
    const after = path.join(bed.dir, "audit-after.log");
    const file = path.join(bed.dir, "audit-sink.ndjson");
    const conf = path.join(bed.dir, "audit.toml");
    const base = [`interval = ${INTERVAL}`, "dry_run = true", `sinks = ["file:${file}"]`, `sensor = "poll"`, "[rules]", `sources = ["smtp-guard"]`];
    fs.writeFileSync(conf, config([`audit_log = "${before}"`, ...base]));
    const daemon = await startDaemon(["--config", conf]);
    fs.writeFileSync(conf, config([`audit_log = "${after}"`, ...base.map((l) => l.replace(`"poll"`, `"auto"`))]));
    process.kill(daemon.pid, "SIGHUP");
    const kept = await sinkLine(file, daemon, "a reload-refused record for the sensor", (l) => l.outcome === "reload-refused");
    expect(kept.message).toBe(`reload refused in part, sensor stays "poll": it changes only with a restart`);
    await waitFor(() => `the reloaded line; stderr:\n${daemon.stderr}`, () => (/reloaded: [^\n]*\n/.test(daemon.stderr) ? true : undefined));
    expect(daemon.stderr).toContain(`sockwarden: reloaded: smtp-guard; audit log ${after}; sensor stays "poll"\n`);

    const clients = bed.ns.spawn(["/usr/bin/python3", fileURLToPath(new URL("./helpers/smtp-clients.py", import.meta.url)), "25"]);
    bed.running.push(clients);
    expect(await clients.nextLine(10_000)).toBe("ready");
    clients.child.stdin!.write("connect curl\n");
    await clients.nextLine(10_000);
    const lines = await waitFor(() => `a would-close record in ${after}; stderr:\n${daemon.stderr}`, () => {
      const text = fs.existsSync(after) ? fs.readFileSync(after, "utf8") : "";
      return text.endsWith("\n") ? text.trim().split("\n").map((l) => JSON.parse(l) as { action: string; requestedBy: string }) : undefined;
    });
    expect(lines.map((l) => [l.action, l.requestedBy])).toEqual([["would-close", "smtp-guard"]]);
    expect(fs.existsSync(before)).toBe(false);
  });

  it("a rule file dropped into a rule directory runs; a broken one is told and the others go on; a removed one is unloaded", async () => {
    const rules = path.join(bed.dir, "rules.d");
    fs.mkdirSync(rules);
    fs.writeFileSync(path.join(rules, "first.ts"), listenerRule("first", 7101));
    const file = path.join(bed.dir, "dropped-sink.ndjson");
    const daemon = await startDaemon(["--rule", rules, "--sink", `file:${file}`, "--audit-log", path.join(bed.dir, "audit-d.log")]);

    // Written elsewhere and moved in, as a deployment would; not a rule: other names.
    fs.writeFileSync(path.join(bed.dir, "second.ts"), listenerRule("second", 7102));
    fs.writeFileSync(path.join(rules, "README.txt"), "rules live here\n");
    fs.renameSync(path.join(bed.dir, "second.ts"), path.join(rules, "second.ts"));
    const loaded = await sinkLine(file, daemon, "the new rule's loaded record", (l) => l.outcome === "loaded");
    expect(loaded).toMatchObject({ kind: "report", rule: "second", severity: "info" });
    expect(loaded.message).toMatch(/^rule second \(.*rules\.d\/second\.ts\): loaded: /);
    const held = await listen(7102);
    await sinkLine(file, daemon, "the new rule's alert", (l) => l.kind === "alert" && l.message === "second saw a listener on 7102");

    fs.writeFileSync(path.join(rules, "broken.ts"), `import { defineRule } from "sockwarden";\nexport default defineRule({ name: "broken", handle( {\n`);
    const failed = await sinkLine(file, daemon, "the broken rule's load-failed record", (l) => l.outcome === "load-failed");
    expect(failed).toMatchObject({ kind: "report", rule: "broken", severity: "warning" });
    expect(failed.message).toMatch(/^rule broken \(.*rules\.d\/broken\.ts:2:\d+\): load-failed: .*the rules running go on as they were$/);
    await listen(7101);
    await sinkLine(file, daemon, "the first rule's alert after the broken file", (l) => l.kind === "alert" && l.message === "first saw a listener on 7101");

    fs.rmSync(path.join(rules, "broken.ts"));
    fs.rmSync(path.join(rules, "second.ts"));
    const unloaded = await sinkLine(file, daemon, "the removed rule's unloaded record", (l) => l.outcome === "unloaded");
    expect(unloaded).toMatchObject({ kind: "report", rule: "second", severity: "info" });
    // Gone: a new listener on its port brings nothing from it, while a new rule still answers.
    await held.stop();
    await listen(7102);
    const later = path.join(rules, "third.ts");
    fs.writeFileSync(later, listenerRule("third", 7103));
    await sinkLine(file, daemon, "the third rule's loaded record", (l) => l.outcome === "loaded" && l.rule === "third");
    await listen(7103);
    await sinkLine(file, daemon, "the third rule's alert", (l) => l.kind === "alert" && l.message === "third saw a listener on 7103");
    expect(sinkLines(file).filter((l) => l.kind === "alert" && l.rule === "second")).toHaveLength(1);
    expect(daemon.hasExited).toBe(false);
  });

  it("a rule directory that starts empty runs its first rule when the file comes", async () => {
    const rules = path.join(bed.dir, "empty.d");
    fs.mkdirSync(rules);
    const file = path.join(bed.dir, "empty-sink.ndjson");
    const daemon = await startDaemon(["--rule", rules, "--sink", `file:${file}`, "--audit-log", path.join(bed.dir, "audit-empty.log")]);
    expect(daemon.stderr).toContain("sockwarden: running no rules yet (watching the rule directories) every");
    fs.writeFileSync(path.join(rules, "late.ts"), listenerRule("late", 7301));
    await sinkLine(file, daemon, "the late rule's loaded record", (l) => l.outcome === "loaded" && l.rule === "late");
    await listen(7301);
    await sinkLine(file, daemon, "the late rule's alert", (l) => l.kind === "alert" && l.message === "late saw a listener on 7301");
  });

  it("an edited rule's reload record says what was reloaded, once", async () => {
    const rule = path.join(bed.dir, "edited.ts");
    fs.writeFileSync(rule, listenerRule("edited", 7201));
    const file = path.join(bed.dir, "edited-sink.ndjson");
    const daemon = await startDaemon(["--rule", rule, "--sink", `file:${file}`, "--audit-log", path.join(bed.dir, "audit-e.log")]);
    fs.writeFileSync(`${rule}.tmp`, listenerRule("edited", 7202));
    fs.renameSync(`${rule}.tmp`, rule);
    const reloaded = await sinkLine(file, daemon, "the reloaded record", (l) => l.outcome === "reloaded");
    expect(reloaded.message).toBe(`rule edited (${rule}): reloaded: its file changed; the new version runs now`);
  });
});

describe("sockwarden run: files it must write, checked before it starts", { timeout: 60_000 }, () => {
  const rule = ["--rule", "smtp-guard"];
  const refused = async (args: string[], asTarget = false) => {
    const argv = [EXECUTABLE, "run", ...rule, ...args];
    const r = await bed.ns.exec(asTarget ? [...AS_TARGET, ...argv] : argv, { timeoutMs: 20_000, env: { ...process.env, HOME: "/root", XDG_STATE_HOME: "" } });
    expect(r.stderr, r.stderr).not.toMatch(STACK_FRAME);
    expect(r.stderr.trim().split("\n"), r.stderr).toHaveLength(1);
    expect(r.stdout).toBe("");
    return { code: r.code, line: r.stderr.trim() };
  };

  it("an audit log or file sink under /proc, or a directory: exit 2, one line naming it", async () => {
    expect(await refused(["--audit-log", "/proc/nope/a.log"])).toEqual({
      code: 2, line: "sockwarden: cannot write /proc/nope/a.log (--audit-log): cannot make its directory /proc/nope: no such file or directory",
    });
    expect(await refused(["--audit-log", path.join(bed.dir, "a.log"), "--sink", "file:/proc/nope/x.log"])).toEqual({
      code: 2, line: "sockwarden: cannot write /proc/nope/x.log (sink file:/proc/nope/x.log): cannot make its directory /proc/nope: no such file or directory",
    });
    const conf = path.join(bed.dir, "bed.dir-audit.toml");
    fs.writeFileSync(conf, config([`audit_log = "${bed.dir}"`]));
    expect(await refused(["--config", conf])).toEqual({ code: 2, line: `sockwarden: cannot write ${bed.dir} (audit_log): it is a directory` });
  });

  it("a file the user named and may not write: exit 2; the default audit log the user may not write: exit 4", async () => {
    const locked = path.join(bed.dir, "locked");
    fs.mkdirSync(locked, { mode: 0o700 });
    expect(await refused(["--audit-log", path.join(locked, "a.log")], true)).toEqual({
      code: 2, line: `sockwarden: cannot write ${path.join(locked, "a.log")} (--audit-log): permission denied`,
    });
    // HOME is root's: the default ~/.local/state/sockwarden/audit.log is out of this user's reach.
    const r = await refused(["--sink", "stdout"], true);
    expect(r.code, r.line).toBe(4);
    expect(r.line).toMatch(/^sockwarden: cannot write \/root\/\.local\/state\/sockwarden\/audit\.log \(the audit log\): .*permission denied.* \(the default for this user; name another with --audit-log\)$/);
  });

  it("a metrics address with a port out of range: exit 2, one line with the file, line and key", async () => {
    const conf = path.join(bed.dir, "bad-metrics.toml");
    fs.writeFileSync(conf, config(["interval = 1", `metrics = "127.0.0.1:99999"`]));
    expect(await refused(["--config", conf, "--audit-log", path.join(bed.dir, "a.log")])).toEqual({
      code: 2, line: `sockwarden: ${conf}:2: metrics: port 99999 is out of range: must be "HOST:PORT" with a port from 1 to 65535, e.g. "127.0.0.1:9464"`,
    });
    expect(await refused(["--metrics", "127.0.0.1:0", "--audit-log", path.join(bed.dir, "a.log")])).toEqual({
      code: 2, line: `sockwarden: --metrics 127.0.0.1:0: port 0 is out of range: must be "HOST:PORT" with a port from 1 to 65535, e.g. "127.0.0.1:9464"`,
    });
  });
});
