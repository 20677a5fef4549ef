/**
 * Usage errors (one line on stderr, exit 2, no stack trace) and a run as an unprivileged user
 * (listing still works; other users' sockets have no process, and stderr says why).
 *
 * Usage errors need only a built dist/sockwarden. The unprivileged run needs root, to make the
 * namespace and switch to the unprivileged user.
 */

import { chmodSync, copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { endpointKey, findDescribed, sortedKeys, stableAgainstSs } from "./helpers/compare.ts";
import { type Listener, startListener } from "./helpers/listener.ts";
import { Netns, describeRun, requireRoot, run } from "./helpers/netns.ts";
import { type Scenario, startScenario } from "./helpers/scenario.ts";
import { EXECUTABLE, parseJsonArray, requireExecutable } from "./helpers/sockwarden.ts";

/** A stack frame as Node, Bun and JavaScriptCore print them. */
const STACK_FRAME = /^\s*at\s|@\S+:\d+:\d+|\.(ts|js):\d+:\d+/m;

describe("usage errors", () => {
  beforeAll(() => requireExecutable());

  it.each([
    ["an unknown long flag", ["list", "--bogus-flag"]],
    ["an unknown short flag", ["list", "-Z"]],
    ["a bad IPv4 address", ["list", "--local", "300.1.2.3"]],
    ["a malformed address", ["list", "--remote", "not-an-address"]],
    ["a bad IPv4 CIDR", ["list", "--local", "10.0.0.0/33"]],
    ["a bad IPv6 CIDR", ["list", "--remote", "::1/129"]],
    ["a port out of range", ["list", "--port", "70000"]],
    ["a port that is not a number", ["list", "--port", "eleven"]],
    ["an unknown state", ["list", "--state", "bogus"]],
    ["an unknown state in a list", ["list", "--state", "listen,nope"]],
  ])("%s exits 2 with one line on stderr", async (_what, args) => {
    const result = await run([EXECUTABLE, ...args], { timeoutMs: 20_000 });
    expect(result.code, describeRun(result)).toBe(2);
    const lines = result.stderr.split("\n").filter((line) => line.trim() !== "");
    expect(lines, describeRun(result)).toHaveLength(1);
    expect(result.stderr, describeRun(result)).not.toMatch(STACK_FRAME);
    expect(result.stdout, describeRun(result)).toBe("");
  });
});

describe("run as an unprivileged user", () => {
  const NOBODY = 65534;
  const asNobody = ["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups"];
  let ns: Netns | undefined;
  let scenario: Scenario;
  let own: Listener;
  let dir: string | undefined;
  let exe: string;

  beforeAll(async () => {
    requireRoot();
    requireExecutable();
    // A copy the unprivileged user can reach and run, in a directory of its own.
    dir = mkdtempSync(join(tmpdir(), "sockwarden-unprivileged-"));
    chmodSync(dir, 0o755);
    exe = join(dir, "sockwarden");
    copyFileSync(EXECUTABLE, exe);
    chmodSync(exe, 0o755);
    ns = await Netns.create("u");
    scenario = await startScenario(ns);
    // One socket that belongs to the unprivileged user itself.
    own = await startListener(ns, asNobody);
  });

  afterAll(async () => {
    await ns?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const listAsNobody = () =>
    ns!.exec(
      [...asNobody, "env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/nonexistent", exe, "list", "-a", "--json"],
      { cwd: dir, timeoutMs: 30_000 },
    );

  it("still lists every endpoint, without processes it may not see, and says why", async () => {
    scenario.assertTimeWaitAlive();
    const { ss, result } = await stableAgainstSs(ns!, listAsNobody);
    expect(result.code, describeRun(result)).toBe(0);
    const endpoints = parseJsonArray(result);
    expect(sortedKeys(endpoints, endpointKey)).toEqual(sortedKeys(ss, endpointKey));

    const ownKey = endpointKey({
      protocol: "tcp",
      family: 4,
      localAddress: "127.0.0.1",
      localPort: own.port,
      remoteAddress: "0.0.0.0",
      remotePort: 0,
      state: "LISTEN",
    });
    for (const endpoint of endpoints) {
      if (endpointKey(endpoint) === ownKey) continue;
      expect(endpoint.process, endpointKey(endpoint)).toBeNull();
      expect(endpoint.pids, endpointKey(endpoint)).toEqual([]);
    }
    // Socket owners come from the kernel's socket table, which needs no privilege.
    expect(findDescribed(endpoints, scenario.socket("listen4")).uid).toBe(0);

    expect(result.stderr).toMatch(/CAP_SYS_PTRACE|root/i);
    expect(result.stderr).not.toMatch(STACK_FRAME);
  });

  it("still names the processes of the user's own sockets", async () => {
    const result = await listAsNobody();
    expect(result.code, describeRun(result)).toBe(0);
    const endpoints = parseJsonArray(result);
    const mine = endpoints.find((e) => e.protocol === "tcp" && e.state === "LISTEN" && e.localPort === own.port);
    expect(mine?.pids).toEqual([own.process.pid]);
    expect(mine?.process?.pid).toBe(own.process.pid);
    expect(mine?.process?.name).toBe("python3");
    expect(mine?.process?.uid).toBe(NOBODY);
    expect(mine?.uid).toBe(NOBODY);
  });
});
