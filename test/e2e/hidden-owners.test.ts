/**
 * `sockwarden run` without CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH and CAP_DAC_OVERRIDE (taken away
 * with capsh; CAP_NET_ADMIN stays, so it can still close) while another user's mail server holds
 * connections: besides the engine's count of sockets without a process, each loaded rule that
 * goes by processes is told what that does to it (smtp-guard may close the mail server's
 * connections), on one line each; a rule that does not go by processes is not named. With every
 * capability, none of this is said.
 *
 * Needs root (network namespace, setpriv, capsh) and a built dist/sockwarden.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { BackgroundProcess, Netns, requireRoot } from "./helpers/netns.ts";
import { EXECUTABLE, requireExecutable } from "./helpers/sockwarden.ts";
import { AS_TARGET } from "./helpers/privileges.ts";

// A mail server of another user: a listener on 25 with one connection to it, held.
const MAIL_SERVER = `
import socket, sys
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(("127.0.0.1", 25)); l.listen()
c = socket.create_connection(("127.0.0.1", 25)); a, _ = l.accept()
print("ready", flush=True)
sys.stdin.readline()
`;
const BY_PORT = `import { defineRule } from "sockwarden";
export default defineRule({ name: "by-port", handle(e, act) { if (e.endpoint.remotePort === 23) act.close(e.endpoint, "no telnet"); } });
`;
const CONSEQUENCE = (rule: string, what: string) =>
  new RegExp(`^sockwarden: ${rule}: \\d+ sockets of other users show no process, so ${what}; give sockwarden CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH$`);

let ns: Netns | undefined;
let dir: string;
const running: BackgroundProcess[] = [];

beforeAll(async () => {
  requireRoot();
  requireExecutable();
  ns = await Netns.create("hidden");
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "sw-hidden-"));
  fs.writeFileSync(path.join(dir, "by-port.ts"), BY_PORT);
  // Port 25 for a user without privileges, in this namespace only.
  const sysctl = await ns.exec(["sysctl", "-qw", "net.ipv4.ip_unprivileged_port_start=0"], { timeoutMs: 5_000 });
  expect(sysctl.code, sysctl.stderr).toBe(0);
  const server = ns.spawn([...AS_TARGET, "/usr/bin/python3", "-c", MAIL_SERVER]);
  running.push(server);
  expect(await server.nextLine(10_000)).toBe("ready");
});

afterEach(async () => {
  // The mail server stays for every test; daemons do not.
  for (const p of running.splice(1)) await p.stop();
});

afterAll(async () => {
  for (const p of running.splice(0)) await p.stop();
  await ns?.dispose();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** The daemon's stderr once it says it runs (then stopped). */
async function startupLines(prefix: string[]): Promise<string[]> {
  const args = ["run", "--sensor", "poll", "--interval", "0.3", "--audit-log", path.join(dir, "audit.log"),
    "--rule", "smtp-guard", "--rule", "connection-flood", "--rule", path.join(dir, "by-port.ts")];
  const d = ns!.spawn([...prefix, EXECUTABLE, ...args]);
  running.push(d);
  const end = performance.now() + 30_000;
  while (!/running /.test(d.stderr) && !d.hasExited && performance.now() < end) await new Promise((r) => setTimeout(r, 50));
  expect(d.stderr, "the daemon did not start").toMatch(/running /);
  await d.stop();
  return d.stderr.split("\n").filter(Boolean);
}

describe("run where other users' processes cannot be read", { timeout: 120_000 }, () => {
  it("names the consequence for each rule that goes by processes", async () => {
    const lines = await startupLines(["capsh", "--drop=cap_sys_ptrace,cap_dac_read_search,cap_dac_override", "--", "-c", 'exec "$@"', "sockwarden"]);
    expect(lines.some((l) => /socket\(s\) of other users show no process/.test(l)), lines.join("\n")).toBe(true);
    const perRule = lines.filter((l) => /^sockwarden: [\w-]+: \d+ sockets? of other users/.test(l));
    expect(perRule, lines.join("\n")).toHaveLength(2);
    expect(perRule[0]).toMatch(CONSEQUENCE("smtp-guard", "it cannot tell a mail server from another process and may close the mail server's connections"));
    expect(perRule[1]).toMatch(CONSEQUENCE("connection-flood", "it cannot count their connections by process, and floods from them go unseen"));
  });

  it("says none of it with every capability", async () => {
    const lines = await startupLines([]);
    expect(lines.filter((l) => /of other users show/.test(l)), lines.join("\n")).toEqual([]);
  });
});
