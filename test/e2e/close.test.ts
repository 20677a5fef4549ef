/**
 * `sockwarden close` against real peers in a private namespace: the closed connection's peer
 * sees its read fail while the process's other connection stays up, for IPv4, IPv6 and UDP, by
 * SOCK_DESTROY and by the owner-takeover fallback; dry runs change nothing; an unprivileged run
 * names the missing capability; the audit log has one line per action.
 *
 * Needs root (network namespace, setpriv) and a built dist/sockwarden.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { BackgroundProcess, Netns, requireRoot } from "./helpers/netns.ts";
import { EXECUTABLE, requireExecutable } from "./helpers/sockwarden.ts";

const TARGET = fileURLToPath(new URL("./helpers/close-target.py", import.meta.url));
let ns: Netns | undefined;
let target: BackgroundProcess;
let ports: Record<string, { local: [string, number]; remote: [string, number] | null }>;
let dir: string;
let auditFile: string;

async function ask(command: string): Promise<string> {
  target.child.stdin!.write(`${command}\n`);
  return target.nextLine(10_000);
}

const fmt = ([host, port]: [string, number]) => (host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`);
const auditLines = () => (fs.existsSync(auditFile) ? fs.readFileSync(auditFile, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)) : []);

beforeAll(async () => {
  requireRoot();
  requireExecutable();
  ns = await Netns.create("c");
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "sw-close-"));
  fs.chmodSync(dir, 0o777);
  auditFile = path.join(dir, "audit.log");
  target = ns.spawn(["/usr/bin/python3", TARGET, "7901", "7902", "7903"]);
  expect(await target.nextLine(10_000)).toBe("ready");
  ports = JSON.parse(await ask("ports"));
});

afterAll(async () => {
  await target?.stop();
  await ns?.dispose();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function close(args: string[], options: { user?: boolean } = {}) {
  const argv = [EXECUTABLE, "close", "--audit-log", auditFile, ...args];
  return ns!.exec(options.user ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ...argv] : argv, { timeoutMs: 15_000 });
}

describe("close", () => {
  it("--dry-run lists what it would close, audits it, and closes nothing", async () => {
    const before = auditLines().length;
    const r = await close(["--dry-run", "--remote-port", "7901"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split("\n")).toHaveLength(2);
    expect(r.stdout).toMatch(/^would close tcp 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:7901 \(python3, pid \d+\)$/m);
    const added = auditLines().slice(before);
    expect(added.map((l) => [l.action, l.outcome, l.requestedBy])).toEqual([
      ["would-close", "dry-run", "cli"],
      ["would-close", "dry-run", "cli"],
    ]);
    expect(await ask("send v4-a-client")).toBe("sent");
    expect(await ask("read v4-a-server")).toBe("data");
  });

  it("an unprivileged run fails with the missing capability and touches nothing", async () => {
    const client = ports["v4-a-client"]!;
    const r = await close([fmt(client.local), fmt(client.remote!)], { user: true });
    expect(r.code).toBe(4);
    expect(r.stderr.trim()).toMatch(/CAP_NET_ADMIN/);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(await ask("send v4-a-client")).toBe("sent");
    expect(await ask("read v4-a-server")).toBe("data");
  });

  it("more than one match needs --yes when nobody can be asked", async () => {
    const r = await close(["--remote-port", "7901"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/2 endpoints match; add --yes/);
    expect(await ask("send v4-b-client")).toBe("sent");
    expect(await ask("read v4-b-server")).toBe("data");
  });

  it("closes an IPv4 connection by its address pair; the peer's read fails, the other connection stays up", async () => {
    const before = auditLines().length;
    const client = ports["v4-a-client"]!;
    const r = await close([fmt(client.local), fmt(client.remote!)]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^closed tcp 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:7901/);
    expect(["ECONNABORTED", "ECONNRESET"]).toContain(await ask("read v4-a-server"));
    expect(await ask("send v4-b-client")).toBe("sent");
    expect(await ask("read v4-b-server")).toBe("data");
    const added = auditLines().slice(before);
    expect(added).toHaveLength(1);
    expect(added[0]).toMatchObject({ action: "close", outcome: "closed", requestedBy: "cli", endpoint: { localPort: client.local[1], remotePort: 7901 } });
    expect(added[0].process.name).toBe("python3");
  });

  it("closes an IPv6 connection by filters", async () => {
    const client = ports["v6-a-client"]!;
    const r = await close(["--local-port", String(client.local[1]), "--remote-port", "7902", "-6"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^closed tcp \[::1\]:\d+ -> \[::1\]:7902/);
    expect(["ECONNABORTED", "ECONNRESET"]).toContain(await ask("read v6-a-server"));
    expect(await ask("send v6-b-client")).toBe("sent");
    expect(await ask("read v6-b-server")).toBe("data");
  });

  it("destroys a UDP socket and its owner's blocked receive fails", async () => {
    const r = await close(["-u", "--local", "127.0.0.1:7903", "--yes"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^closed udp 127\.0\.0\.1:7903/);
    expect(await ask("udp")).toBe("ECONNABORTED");
  });

  it("takes a socket from its owner when asked to (the fallback for kernels without SOCK_DESTROY)", async () => {
    const client = ports["v6-b-client"]!;
    const r = await close([fmt(client.local), fmt(client.remote!), "--method", "owner"]);
    expect(r.code, r.stderr).toBe(0);
    expect(["ECONNABORTED", "ECONNRESET"]).toContain(await ask("read v6-b-server"));
    expect(auditLines().at(-1)).toMatchObject({ action: "close", outcome: "closed" });
  });

  it("nothing matched is an error, a malformed endpoint a usage error with an example", async () => {
    const none = await close(["127.0.0.1:1", "127.0.0.1:2"]);
    expect(none.code).toBe(1);
    expect(none.stderr.trim()).toBe("sockwarden: no endpoint matches");
    const bad = await close(["10.0.0.5", "x:25"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toMatch(/^sockwarden: bad endpoint '10\.0\.0\.5': expected ADDRESS:PORT, e\.g\. /);
  });
});
