/**
 * Files and directories named on the command line are the user's input: one that cannot be read
 * or written ends the command with one line naming it and the reason in words, exit 2, before
 * any work (no "internal error", no bare errno code). Covers `rules init`, `rules check`,
 * `rules test` and its `--events`, `list --replay` and `--record` (`close --audit-log` is in
 * cli-close-json.test.ts, which has connections to close): missing,
 * a directory where a file is wanted and the reverse, a read-only file system, and no permission.
 *
 * Needs root (a read-only mount in a private mount namespace, setpriv) and a built dist/sockwarden.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { type RunResult, describeRun, requireRoot, run } from "./helpers/netns.ts";
import { EXECUTABLE, requireExecutable } from "./helpers/sockwarden.ts";

let dir: string;
let readOnly: string;
let rootOnly: string;
let emptyDir: string;

beforeAll(() => {
  requireRoot();
  requireExecutable();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "sw-files-"));
  fs.chmodSync(dir, 0o755);
  readOnly = path.join(dir, "ro");
  fs.mkdirSync(readOnly);
  rootOnly = path.join(dir, "root-only");
  fs.mkdirSync(rootOnly, { mode: 0o700 });
  fs.writeFileSync(path.join(rootOnly, "rule.ts"), "export default {};\n");
  fs.writeFileSync(path.join(dir, "secret.ts"), "export default {};\n", { mode: 0o600 });
  emptyDir = path.join(dir, "empty");
  fs.mkdirSync(emptyDir);
  fs.writeFileSync(path.join(dir, "plain-file"), "x\n");
});

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function sockwarden(args: string[], prefix: string[] = []): Promise<RunResult> {
  return run([...prefix, EXECUTABLE, ...args], { timeoutMs: 30_000, cwd: dir });
}

/** Inside a private mount namespace where `readOnly` is a read-only tmpfs. */
const onReadOnlyMount = ["unshare", "--mount", "--propagation", "private", "sh", "-c", `mount -t tmpfs -o ro tmpfs "$0" && exec "$@"`];
const asNobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"];

/** Exit 2, one line on stderr naming `file` and saying `reason`; nothing an errno code. */
function expectFileError(r: RunResult, file: string, reason: RegExp): void {
  expect(r.code, describeRun(r)).toBe(2);
  const lines = r.stderr.split("\n").filter(Boolean);
  expect(lines, describeRun(r)).toHaveLength(1);
  expect(lines[0]).toContain(file);
  expect(lines[0]).toMatch(reason);
  expect(lines[0]).not.toMatch(/internal error|\bE[A-Z]{3,}\b/);
}

describe("rules init", () => {
  it("into a directory that cannot be made under /proc", async () => {
    expectFileError(await sockwarden(["rules", "init", "/proc/nope"]), "/proc/nope", /no such file or directory/);
  });

  it("onto an existing file", async () => {
    expectFileError(await sockwarden(["rules", "init", "/etc/hostname"]), "/etc/hostname", /exists and is not a directory/);
  });

  it("into a read-only file system", async () => {
    const r = await sockwarden(["rules", "init", readOnly], [...onReadOnlyMount, readOnly]);
    expectFileError(r, path.join(readOnly, "sockwarden.d.ts"), /read-only/);
  });

  it("into a directory the user may not write", async () => {
    const r = await sockwarden(["rules", "init", path.join(rootOnly, "sub")], asNobody);
    expectFileError(r, rootOnly, /permission denied/);
  });
});

describe("rules check and rules test", () => {
  it("a rule file the user may not read", async () => {
    expectFileError(await sockwarden(["rules", "check", path.join(dir, "secret.ts")], asNobody), "secret.ts", /permission denied/);
  });

  it("a directory the user may not read", async () => {
    expectFileError(await sockwarden(["rules", "check", rootOnly], asNobody), rootOnly, /permission denied/);
  });

  it("a directory with no rules in it", async () => {
    expectFileError(await sockwarden(["rules", "check", emptyDir]), emptyDir, /no rule files/);
  });

  it("--events that is missing or a directory", async () => {
    expectFileError(await sockwarden(["rules", "test", "smtp-guard", "--events", "/missing.ndjson"]), "/missing.ndjson", /no such file or directory/);
    expectFileError(await sockwarden(["rules", "test", "smtp-guard", "--events", dir]), dir, /is a directory/);
  });
});

describe("list --replay and --record", () => {
  it("--replay of a missing file or a directory", async () => {
    expectFileError(await sockwarden(["list", "--replay", "/missing"]), "/missing", /no such file or directory/);
    expectFileError(await sockwarden(["list", "--replay", dir]), dir, /is a directory/);
    // The default command lists the same way when replaying.
    expectFileError(await sockwarden(["--replay", "/missing"]), "/missing", /no such file or directory/);
  });

  it("--record into a missing directory, onto a directory, on a read-only file system", async () => {
    expectFileError(await sockwarden(["list", "--record", "/proc/nope/x"]), "/proc/nope/x", /directory \/proc\/nope does not exist/);
    expectFileError(await sockwarden(["list", "--record", dir]), dir, /is a directory/);
    expectFileError(await sockwarden(["list", "--record", path.join(dir, "plain-file", "x")]), "plain-file", /not a directory/);
    const target = path.join(readOnly, "rec");
    expectFileError(await sockwarden(["list", "--record", target], [...onReadOnlyMount, readOnly]), target, /read-only/);
  });
});
