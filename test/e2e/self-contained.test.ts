/**
 * The executable is one file: copied alone into an empty directory and run with an empty
 * environment it works; and it still works on a locked-down box where /tmp and /dev/shm are
 * mounted noexec and the working directory is read-only (an embedded native addon must not be
 * loaded from an executable mapping of /tmp).
 *
 * Needs root (network and mount namespaces) and a built dist/sockwarden.
 */

import { chmodSync, copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Listener, startListener } from "./helpers/listener.ts";
import { Netns, describeRun, requireRoot } from "./helpers/netns.ts";
import { EXECUTABLE, type JsonEndpoint, parseJsonArray, requireExecutable } from "./helpers/sockwarden.ts";

let ns: Netns | undefined;
let listener: Listener;
const cleanup: string[] = [];

beforeAll(async () => {
  requireRoot();
  requireExecutable();
  ns = await Netns.create("c");
  listener = await startListener(ns);
});

afterAll(async () => {
  await ns?.dispose();
  for (const dir of cleanup) rmSync(dir, { recursive: true, force: true });
});

function expectListenerListed(endpoints: JsonEndpoint[]): void {
  const found = endpoints.filter((e) => e.protocol === "tcp" && e.state === "LISTEN" && e.localPort === listener.port);
  expect(found).toHaveLength(1);
  expect(found[0]?.localAddress).toBe("127.0.0.1");
  expect(found[0]?.pids).toEqual([listener.process.pid]);
}

describe("a lone copy of the executable", () => {
  it("runs from an empty directory with an empty environment", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sockwarden-alone-"));
    cleanup.push(dir);
    copyFileSync(EXECUTABLE, join(dir, "sockwarden"));
    chmodSync(join(dir, "sockwarden"), 0o755);
    expect(readdirSync(dir)).toEqual(["sockwarden"]);

    const result = await ns!.exec(["env", "-i", "./sockwarden", "list", "-a", "--json"], { cwd: dir, timeoutMs: 30_000 });
    expect(result.code, describeRun(result)).toBe(0);
    expectListenerListed(parseJsonArray(result));
  });
});

describe("a locked-down box: noexec /tmp and /dev/shm, read-only working directory", () => {
  /**
   * Inside a private mount namespace: a read-only tmpfs holding the executable (mounted with
   * exec allowed) is the working directory; /tmp and /dev/shm are noexec tmpfs. The script
   * proves each restriction before running the program, and prints the relevant /proc/mounts
   * lines on stderr prefixed with "MOUNT ".
   */
  const SCRIPT = String.raw`
set -eu
src="$1"; root="$2"
mount -t tmpfs -o size=512m,mode=0755 sockwarden-e2e-exe "$root"
cp "$src" "$root/sockwarden"
chmod 0755 "$root/sockwarden"
mount -o remount,ro "$root"
mount -t tmpfs -o noexec,nosuid,nodev,mode=1777 sockwarden-e2e-tmp /tmp
mount -t tmpfs -o noexec,nosuid,nodev,mode=1777 sockwarden-e2e-shm /dev/shm

for dir in /tmp /dev/shm; do
  cp /bin/true "$dir/probe"
  chmod 0755 "$dir/probe"
  if "$dir/probe" 2>/dev/null; then echo "a program in $dir still runs" >&2; exit 91; fi
done
if touch "$root/probe" 2>/dev/null; then echo "$root is writable" >&2; exit 92; fi

while read -r device point type options rest; do
  case "$point" in
    /tmp|/dev/shm|"$root") echo "MOUNT $point $options" >&2 ;;
  esac
done < /proc/mounts

cd "$root"
exec env -i ./sockwarden list -a --json
`;

  it("still lists endpoints", async () => {
    // The executable's mount point must be outside /tmp, which the script covers.
    const root = mkdtempSync(join("/var/tmp", "sockwarden-locked-"));
    cleanup.push(root);

    const result = await ns!.exec(["unshare", "--mount", "--propagation", "private", "sh", "-c", SCRIPT, "sh", EXECUTABLE, root], {
      timeoutMs: 60_000,
    });

    const mounts = new Map<string, string[]>();
    for (const line of result.stderr.split("\n")) {
      const match = /^MOUNT (\S+) (\S+)$/.exec(line);
      if (match?.[1] && match[2]) mounts.set(match[1], match[2].split(","));
    }
    // The restrictions were really in force when the program ran.
    expect(result.code === 91 || result.code === 92, describeRun(result)).toBe(false);
    expect(mounts.get("/tmp"), describeRun(result)).toContain("noexec");
    expect(mounts.get("/dev/shm"), describeRun(result)).toContain("noexec");
    expect(mounts.get(root), describeRun(result)).toContain("ro");
    expect(mounts.get(root), describeRun(result)).not.toContain("noexec");

    expect(result.code, describeRun(result)).toBe(0);
    expectListenerListed(parseJsonArray(result));

    // Nothing leaked into this process's mount namespace.
    const ours = readFileSync("/proc/self/mounts", "utf8");
    expect(ours).not.toContain("sockwarden-e2e-");
  });
});

describe("a box without the C++ runtime", () => {
  // koffi's addon is linked against libstdc++.so.6; the executable itself is not. Where the
  // library is missing (here: an empty file over it, in a private mount namespace), listing goes
  // on through /proc/net and says why.
  const SCRIPT = String.raw`
set -eu
lib="$(ldconfig -p | awk '$1 == "libstdc++.so.6" { print $NF; exit }')"
[ -n "$lib" ] || { echo "no libstdc++.so.6 in the loader's cache" >&2; exit 93; }
mount --bind /dev/null "$(readlink -f "$lib")"
exec "$@"
`;

  it("lists through /proc/net and names the missing library", async () => {
    const result = await ns!.exec(["unshare", "--mount", "--propagation", "private", "sh", "-c", SCRIPT, "sh", EXECUTABLE, "list", "-a", "--json"], {
      timeoutMs: 60_000,
    });
    expect(result.code, describeRun(result)).toBe(0);
    expect(result.stderr).toMatch(/^note: netlink sock_diag is unavailable \(cannot load the embedded koffi addon .*libstdc\+\+\.so\.6.*\); reading \/proc\/net instead/m);
    expectListenerListed(parseJsonArray(result));
    const ours = readFileSync("/proc/self/mounts", "utf8");
    expect(ours).not.toMatch(/libstdc/);
  });
});
