/**
 * `close --json` and `--ndjson`: stdout carries exactly the audit records the close wrote (dry
 * runs, closes), as one array or one object per line, and nothing for people; the exit status
 * is what it is without them. Real connections in a private namespace (helpers/close-target.py).
 *
 * Needs root (network namespace, SOCK_DESTROY) and a built dist/sockwarden.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type BackgroundProcess, Netns, describeRun, requireRoot } from "./helpers/netns.ts";
import { EXECUTABLE, requireExecutable } from "./helpers/sockwarden.ts";

const TARGET = fileURLToPath(new URL("./helpers/close-target.py", import.meta.url));
const [P4, P6, PU] = [7921, 7922, 7923];
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
const auditLines = (): Record<string, unknown>[] =>
  fs.existsSync(auditFile) ? fs.readFileSync(auditFile, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l)) : [];

beforeAll(async () => {
  requireRoot();
  requireExecutable();
  ns = await Netns.create("cj");
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "sw-close-json-"));
  auditFile = path.join(dir, "audit.log");
  target = ns.spawn(["/usr/bin/python3", TARGET, String(P4), String(P6), String(PU)]);
  expect(await target.nextLine(10_000)).toBe("ready");
  ports = JSON.parse(await ask("ports"));
});

afterAll(async () => {
  await target?.stop();
  await ns?.dispose();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function close(args: string[]) {
  return ns!.exec([EXECUTABLE, "close", "--audit-log", auditFile, ...args], { timeoutMs: 15_000 });
}

describe("close --json and --ndjson", () => {
  it("--dry-run --json: one array of the would-close records, the same as the audit log's", async () => {
    const before = auditLines().length;
    const r = await close(["--dry-run", "--remote-port", String(P4), "--json"]);
    expect(r.code, describeRun(r)).toBe(0);
    const printed = JSON.parse(r.stdout);
    expect(printed).toEqual(auditLines().slice(before));
    expect(printed).toHaveLength(2);
    for (const record of printed) {
      expect(record).toMatchObject({ action: "would-close", outcome: "dry-run", requestedBy: "cli", endpoint: { remotePort: P4 }, process: { name: "python3" } });
    }
    // What people read went to stderr.
    expect(r.stderr).toMatch(/^would close tcp 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:7921/m);
    expect(await ask("send v4-a-client")).toBe("sent");
    expect(await ask("read v4-a-server")).toBe("data");
  });

  it("--json: what was closed, as audited; the peer's read fails", async () => {
    const before = auditLines().length;
    const client = ports["v4-a-client"]!;
    const r = await close([fmt(client.local), fmt(client.remote!), "--json"]);
    expect(r.code, describeRun(r)).toBe(0);
    const printed = JSON.parse(r.stdout);
    expect(printed).toEqual(auditLines().slice(before));
    expect(printed).toHaveLength(1);
    expect(printed[0]).toMatchObject({ action: "close", outcome: "closed", endpoint: { localPort: client.local[1], remotePort: P4 } });
    expect(["ECONNABORTED", "ECONNRESET"]).toContain(await ask("read v4-a-server"));
  });

  it("--ndjson: one record per line, each as audited", async () => {
    const before = auditLines().length;
    const r = await close(["--remote-port", String(P6), "-6", "--yes", "--ndjson"]);
    expect(r.code, describeRun(r)).toBe(0);
    const printed = r.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l));
    expect(printed).toEqual(auditLines().slice(before));
    expect(printed.map((p) => [p.action, p.outcome])).toEqual([
      ["close", "closed"],
      ["close", "closed"],
    ]);
    expect(r.stdout.endsWith("}\n")).toBe(true);
  });

  it("what was refused is a record too: no owner to take a TIME_WAIT socket from, exit 1 as before", async () => {
    const TIME_WAIT = [
      "import socket",
      "s = socket.socket(); s.bind(('127.0.0.1', 7924)); s.listen()",
      "c = socket.create_connection(('127.0.0.1', 7924)); a, _ = s.accept()",
      // The client closes first, so its end waits in TIME_WAIT (60 s) once the server closes too.
      "c.close(); assert a.recv(1) == b''; a.close(); s.close()",
    ].join("\n");
    const made = await ns!.exec(["/usr/bin/python3", "-c", TIME_WAIT], { timeoutMs: 10_000 });
    expect(made.code, describeRun(made)).toBe(0);
    const before = auditLines().length;
    const r = await close(["--state", "time-wait", "--remote-port", "7924", "--method", "owner", "--json"]);
    expect(r.code, describeRun(r)).toBe(1);
    const printed = JSON.parse(r.stdout);
    expect(printed).toEqual(auditLines().slice(before));
    expect(printed).toHaveLength(1);
    expect(printed[0]).toMatchObject({ action: "close", outcome: "failed", endpoint: { state: "TIME_WAIT", remotePort: 7924 } });
    expect(printed[0].message).toMatch(/TIME_WAIT/);
    expect(r.stderr).toMatch(/^sockwarden: cannot close tcp 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:7924/);
  });

  it("nothing matched: --json prints an empty array, exit 1 as before", async () => {
    const r = await close(["--remote-port", "1", "--json"]);
    expect(r.code, describeRun(r)).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual([]);
    expect(r.stderr).toBe("sockwarden: no endpoint matches\n");
  });

  it("an audit log that cannot be written: one line naming it, exit 2, nothing closed or printed", async () => {
    for (const log of ["/proc/nope/audit.log", dir]) {
      const r = await ns!.exec([EXECUTABLE, "close", "--audit-log", log, "--remote-port", String(P4), "--yes", "--json"], { timeoutMs: 15_000 });
      expect(r.code, describeRun(r)).toBe(2);
      expect(r.stderr.startsWith(`sockwarden: cannot write ${log} (--audit-log): `), r.stderr).toBe(true);
      expect(r.stderr.trim().split("\n"), r.stderr).toHaveLength(1);
      expect(r.stderr).toMatch(/no such file or directory\n$|it is a directory\n$/);
      expect(r.stdout).toBe("");
    }
    expect(await ask("send v4-b-client")).toBe("sent");
    expect(await ask("read v4-b-server")).toBe("data");
  });

  it("--json with --ndjson is a usage error", async () => {
    const r = await close(["--remote-port", "1", "--json", "--ndjson"]);
    expect(r.code, describeRun(r)).toBe(2);
  });
});
