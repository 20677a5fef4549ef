/**
 * Rules' kills through the daemon reach only the process the rule decided about, and never a
 * protected one:
 *  - in a private PID namespace a rule's kill of `victimA`, decided on its closed listener after
 *    it exited, finds its PID taken by a process named `sshd` (forced through ns_last_pid): the
 *    kill is refused, sshd lives, and the audit record names sshd as what was found there;
 *  - a process holding a socket on a port in `protect.ports` is not killed, and the refusal
 *    names the socket, while an unprotected neighbour is.
 *
 * Needs root (network and PID namespaces, ns_last_pid) and a built dist/sockwarden.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type BackgroundProcess, Netns, requireRoot } from "./helpers/netns.ts";
import { EXECUTABLE, requireExecutable } from "./helpers/sockwarden.ts";
import { waitFor } from "./helpers/wait-for.ts";

const HELPER = fileURLToPath(new URL("./helpers/pid-namespace.py", import.meta.url));
const RULE = fileURLToPath(new URL("../fixtures/rules/kill/kill-named.ts", import.meta.url));
let ns: Netns | undefined;
let dir: string;
const running: BackgroundProcess[] = [];

beforeAll(async () => {
  requireRoot();
  requireExecutable();
  ns = await Netns.create("k");
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "sw-kill-guard-"));
  // A program whose kernel name is sshd: a copy of sleep under that name.
  fs.copyFileSync("/bin/sleep", path.join(dir, "sshd"));
  fs.chmodSync(path.join(dir, "sshd"), 0o755);
});

afterEach(async () => {
  for (const p of running.splice(0)) await p.stop();
});

afterAll(async () => {
  await ns?.dispose();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const readText = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "");
const jsonLines = (file: string) => readText(file).split("\n").filter(Boolean).map((l) => JSON.parse(l));

/** PID 1 of a fresh PID namespace inside the test's network namespace, driven line by line. */
class PidNamespace {
  private constructor(private readonly init: BackgroundProcess) {}

  static start(): PidNamespace {
    const init = ns!.spawn(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", "/usr/bin/python3", HELPER]);
    running.push(init);
    return new PidNamespace(init);
  }

  async ask(command: Record<string, unknown>): Promise<Record<string, unknown>> {
    this.init.child.stdin!.write(`${JSON.stringify(command)}\n`);
    const answer = JSON.parse(await this.init.nextLine(20_000)) as Record<string, unknown>;
    if (answer.error) throw new Error(`${String(answer.error)}; helper stderr:\n${this.init.stderr}`);
    return answer;
  }
}

interface Daemon {
  pid: number;
  stdout: string;
  stderr: string;
  audit: string;
}

async function startDaemon(pidns: PidNamespace, name: string, config: string): Promise<Daemon> {
  const d: Daemon = {
    pid: 0,
    stdout: path.join(dir, `${name}.out`),
    stderr: path.join(dir, `${name}.err`),
    audit: path.join(dir, `${name}.audit`),
  };
  const file = path.join(dir, `${name}.toml`);
  fs.writeFileSync(file, `audit_log = "${d.audit}"\nsinks = ["stdout:ndjson"]\n${config}`);
  d.pid = (await pidns.ask({ op: "spawn", argv: [EXECUTABLE, "run", "--config", file], out: d.stdout, err: d.stderr })).pid as number;
  await waitFor(() => `the daemon to start; stderr:\n${readText(d.stderr)}`, () => (/running /.test(readText(d.stderr)) ? true : undefined));
  return d;
}

/** The daemon's sink records whose message matches, once there is one. */
const logged = (d: Daemon, pattern: RegExp) =>
  waitFor(
    () => `a record matching ${pattern}; stdout:\n${readText(d.stdout)}\nstderr:\n${readText(d.stderr)}`,
    () => {
      const hit = jsonLines(d.stdout).find((r) => pattern.test(String(r.message)));
      return hit ?? undefined;
    },
  );

const auditOf = (d: Daemon, n: number) =>
  waitFor(
    () => `${n} kill record(s) in the audit log; audit:\n${readText(d.audit)}\nstderr:\n${readText(d.stderr)}`,
    () => {
      const kills = jsonLines(d.audit).filter((r) => r.action === "kill");
      return kills.length >= n ? kills : undefined;
    },
  );

describe("rules' kills", { timeout: 120_000 }, () => {
  it("never reach a protected process that has taken the PID of the one decided about", async () => {
    const pidns = PidNamespace.start();
    // One refresh a second: the PID changes hands right after a refresh, long before the next.
    const daemon = await startDaemon(
      pidns,
      "reuse",
      `interval = 1\n[rules]\nsources = ["${RULE}"]\n[rules.options.kill-named]\nnames = ["victimA"]\nwhen = "closed"\n[protect]\nprocesses = ["sshd"]\n`,
    );
    const victim = (await pidns.ask({ op: "listener", name: "victimA", port: 7101 })).pid as number;
    await logged(daemon, new RegExp(`^watching victimA \\(pid ${victim}\\)`));
    // Stopped, the daemon starts no thread or process that could take the PID in between.
    await pidns.ask({ op: "signal", pid: daemon.pid, signal: "SIGSTOP" });
    await pidns.ask({ op: "end", pid: victim });
    const sshd = (await pidns.ask({ op: "reuse", pid: victim, argv: [path.join(dir, "sshd"), "600"] })).pid as number;
    expect(sshd, "the next process in the namespace did not get victimA's PID").toBe(victim);
    await pidns.ask({ op: "signal", pid: daemon.pid, signal: "SIGCONT" });

    const [record] = await auditOf(daemon, 1);
    // Whatever the daemon did with the kill, sshd is still there.
    expect(await pidns.ask({ op: "alive", pid: sshd })).toEqual({ alive: true, comm: "sshd" });
    expect(record, JSON.stringify(record)).toMatchObject({
      action: "kill",
      requestedBy: "kill-named",
      reason: "victimA held 127.0.0.1:7101",
      process: { pid: victim, name: "victimA" },
      observed: { pid: victim, name: "sshd" },
      signals: [],
    });
    expect(record.outcome).toBe("reused");
    expect(record.message).toMatch(new RegExp(`^refused: pid ${victim} is now sshd \\(started [^)]+\\), not victimA`));
    const sunk = await logged(daemon, /^refused: /);
    expect(sunk).toMatchObject({ kind: "alert", severity: "warning", action: "kill", outcome: "reused", rule: "kill-named" });
  });

  it("leave a process holding a socket on a protected port alone, and say which socket", async () => {
    const pidns = PidNamespace.start();
    const daemon = await startDaemon(
      pidns,
      "ports",
      `interval = 0.3\n[rules]\nsources = ["${RULE}"]\n[rules.options.kill-named]\nnames = ["holder", "bystander"]\n[protect]\nports = [7102]\n`,
    );
    const holder = (await pidns.ask({ op: "listener", name: "holder", port: 7102 })).pid as number;
    const bystander = (await pidns.ask({ op: "listener", name: "bystander", port: 7103 })).pid as number;
    const records = await auditOf(daemon, 2);
    const of = (pid: number) => records.find((r) => r.process?.pid === pid);
    expect(of(holder), JSON.stringify(records)).toMatchObject({ outcome: "protected", process: { name: "holder" } });
    expect(of(holder).message).toMatch(/tcp 127\.0\.0\.1:7102\b.*port 7102 is protected/);
    expect(await pidns.ask({ op: "alive", pid: holder })).toEqual({ alive: true, comm: "holder" });
    // The same rule does end a process that holds nothing protected.
    expect(of(bystander), JSON.stringify(records)).toMatchObject({ outcome: "terminated", signals: ["SIGTERM"], observed: { pid: bystander, name: "bystander" } });
    expect((await pidns.ask({ op: "alive", pid: bystander })).alive).toBe(false);
  });
});
