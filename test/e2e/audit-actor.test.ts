/**
 * Every audit record says who acted: real and effective uid, the session's login user
 * (/proc/self/loginuid, set here for the run as pam_loginuid would at a login) and SUDO_USER.
 * `close --dry-run` of a real listener in a private namespace, run as another uid with setpriv.
 *
 * Needs root (network namespace, writing loginuid, setpriv) and a built dist/sockwarden.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Netns, describeRun, requireRoot } from "./helpers/netns.ts";
import { EXECUTABLE, requireExecutable } from "./helpers/sockwarden.ts";
import { startListener, type Listener } from "./helpers/listener.ts";

const NOBODY = 65534;
/** A login uid with an entry in /etc/passwd, and its name as getpwuid gives it. */
let loginUid: number;
let loginName: string;
let ns: Netns | undefined;
let listener: Listener;
let dir: string;

function firstPasswdUser(): [number, string] {
  for (const line of fs.readFileSync("/etc/passwd", "utf8").split("\n")) {
    const [name, , uid] = line.split(":");
    if (name && Number(uid) >= 1000 && Number(uid) < NOBODY) return [Number(uid), name];
  }
  // Daemon accounts are enough to show a name is looked up.
  return [1, fs.readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.split(":")[2] === "1")!.split(":")[0]!];
}

beforeAll(async () => {
  requireRoot();
  requireExecutable();
  [loginUid, loginName] = firstPasswdUser();
  ns = await Netns.create("aa");
  listener = await startListener(ns);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "sw-audit-actor-"));
  fs.chmodSync(dir, 0o777);
});

afterAll(async () => {
  await listener?.process.stop();
  await ns?.dispose();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Runs `close --dry-run` on the listener with a login uid set first (none: left as it is). */
async function dryRun(name: string, setLoginUid: number | null, ids: string[], env: Record<string, string | undefined>) {
  const file = path.join(dir, `${name}.log`);
  const login = setLoginUid === null ? "" : `echo ${setLoginUid} > /proc/self/loginuid && `;
  const argv = ["sh", "-c", `${login}exec "$@"`, "sh", "setpriv", ...ids, "--", EXECUTABLE, "close", "--dry-run", "--port", String(listener.port), "--audit-log", file];
  const r = await ns!.exec(argv, { timeoutMs: 15_000, env: { PATH: process.env.PATH, ...env } as Record<string, string> });
  expect(r.code, describeRun(r)).toBe(0);
  const records = fs.readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
  expect(records).toHaveLength(1);
  return records[0];
}

describe("the audit log says who acted", () => {
  it("real and effective uid, login user and SUDO_USER", async () => {
    const record = await dryRun("sudo", loginUid, ["--reuid", String(NOBODY), "--regid", String(NOBODY), "--clear-groups"], { SUDO_USER: "alice" });
    expect(record.actor).toEqual({ uid: NOBODY, euid: NOBODY, loginUid, loginUser: loginName, sudoUser: "alice" });
    expect(record).toMatchObject({ action: "would-close", requestedBy: "cli" });
  });

  it("an effective uid apart from the real one; no login uid and no SUDO_USER are left out", async () => {
    const unset = 4294967295;
    const record = await dryRun("plain", unset, ["--euid", String(NOBODY)], { SUDO_USER: undefined });
    expect(record.actor).toEqual({ uid: 0, euid: NOBODY });
  });
});
