/**
 * `--all-namespaces` where the other network namespaces cannot be seen. Without CAP_SYS_ADMIN in
 * the host's user namespace /proc/PID/ns/net of other users' processes is unreadable, so with no
 * `ip netns` names around nothing says other namespaces exist: the command must still refuse
 * with one line naming CAP_SYS_ADMIN (exit 4, the README's privilege table), not list its own
 * namespace as if it were all of them.
 *
 * Each run gets mount and PID namespaces of its own, with an empty /run/netns and a /proc of its
 * own PID namespace: the namespaces that other tests on the machine make stay out of sight, as on
 * a machine with nothing but the host's namespace and a container.
 *
 * Needs root (namespaces, setpriv, unshare) and a built dist/sockwarden.
 */
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Netns, type RunResult, describeRun, requireRoot, run } from "./helpers/netns.ts";
import { EXECUTABLE, requireExecutable } from "./helpers/sockwarden.ts";
import { refusal } from "./helpers/privileges.ts";

const AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"];
/** Hides every other namespace: an empty /run/netns and only this PID namespace's processes. */
const HIDE_OTHERS = ["sh", "-c", 'if [ -d /run/netns ]; then mount -t tmpfs tmpfs /run/netns || exit 97; fi; exec "$@"', "sh"];
const ENV = ["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/nonexistent", "LANG=C"];

let dir = "";
let exe = "";
let ns: Netns | undefined;

beforeAll(async () => {
  requireRoot();
  requireExecutable();
  // A copy any user can run, outside a checkout that may be private to root.
  dir = mkdtempSync(join(tmpdir(), "sockwarden-hidden-ns-"));
  chmodSync(dir, 0o755);
  exe = join(dir, "sockwarden");
  copyFileSync(EXECUTABLE, exe);
  chmodSync(exe, 0o755);
  ns = await Netns.create("hid");
});

afterAll(async () => {
  await ns?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The refusal every case must end in: exit 4, nothing on stdout, one line naming CAP_SYS_ADMIN. */
function expectRefused(r: RunResult, inUserNamespace: boolean): void {
  const why = describeRun(r);
  expect(r.code, `the shell could not hide /run/netns: ${why}`).not.toBe(97);
  expect(refusal(r), why).toBe("needs CAP_SYS_ADMIN");
  expect(r.code, why).toBe(4);
  expect(r.stdout, why).toBe("");
  expect(r.stderr, why).toMatch(/other network namespaces/);
  if (inUserNamespace) expect(r.stderr, why).toMatch(/user namespace/);
}

describe("--all-namespaces with no other namespace in sight", () => {
  it("inside a user namespace made by nobody (unshare --user --map-root-user --net)", async () => {
    const userns = ["unshare", "--user", "--map-root-user", "--net", "--mount", "--pid", "--fork", "--mount-proc"];
    for (const args of [
      ["list", "-a", "--all-namespaces", "--json"],
      ["list", "-a", "--netns", "1"],
      ["watch", "-N", "--ndjson", "--duration", "1"],
    ]) {
      expectRefused(await run([...AS_NOBODY, ...userns, ...HIDE_OTHERS, ...ENV, exe, ...args], { cwd: dir, timeoutMs: 30_000 }), true);
    }
  });

  it("as nobody in the host's user namespace", async () => {
    const hidden = ["unshare", "--mount", "--pid", "--fork", "--mount-proc", ...HIDE_OTHERS];
    const r = await ns!.exec([...hidden, ...AS_NOBODY, ...ENV, exe, "list", "-a", "-N", "--json"], { cwd: dir, timeoutMs: 30_000 });
    expectRefused(r, false);
  });

  it("as root, hidden the same way: a listing of this namespace, exit 0", async () => {
    const hidden = ["unshare", "--mount", "--pid", "--fork", "--mount-proc", ...HIDE_OTHERS];
    const r = await ns!.exec([...hidden, ...ENV, exe, "list", "-a", "-N", "--json"], { cwd: dir, timeoutMs: 30_000 });
    expect(r.code, describeRun(r)).toBe(0);
    expect(r.stderr, describeRun(r)).not.toMatch(/CAP_SYS_ADMIN/);
  });
});
