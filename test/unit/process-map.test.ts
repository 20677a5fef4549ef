import { afterAll, describe, expect, test } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ProcessReader, ownersOf, parseStat, scanSocketOwners } from "../../src/engine/linux/process-map.ts";
import { libcFdLinks } from "../../src/engine/linux/fd-links.ts";
import { UserTable, parsePasswd } from "../../src/engine/linux/users.ts";

// A directory shaped like /proc, with fd symlinks whose targets are the strings the kernel shows.
const root = fs.mkdtempSync(path.join(os.tmpdir(), "sw-proc-"));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

function proc(pid: number, fds: Record<string, string>, stat?: string) {
  const dir = path.join(root, String(pid));
  fs.mkdirSync(path.join(dir, "fd"), { recursive: true });
  fs.mkdirSync(path.join(dir, "ns"), { recursive: true });
  fs.symlinkSync("net:[4026531840]", path.join(dir, "ns", "net"));
  for (const [fd, target] of Object.entries(fds)) fs.symlinkSync(target, path.join(dir, "fd", fd));
  if (stat) fs.writeFileSync(path.join(dir, "stat"), stat);
  fs.writeFileSync(path.join(dir, "comm"), `p${pid}\n`);
  fs.writeFileSync(path.join(dir, "cmdline"), `/bin/p${pid}\0--flag\0two words\0`);
}
fs.mkdirSync(path.join(root, "self", "ns"), { recursive: true });
fs.symlinkSync("net:[4026531840]", path.join(root, "self", "ns", "net"));
fs.writeFileSync(path.join(root, "stat"), "cpu  1 2 3\nbtime 1700000000\nprocesses 5\n");
proc(100, { "0": "/dev/null", "3": "socket:[5001]", "4": "socket:[5002]", "5": "pipe:[77]" }, "100 (p100) S 1 100 100 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 12345 0 0\n");
proc(200, { "7": "socket:[5002]", "8": "anon_inode:[eventfd]" }, "200 (a (weird) name) R 100 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 250 0 0\n");
proc(300, { "3": "socket:[5003]" });
fs.mkdirSync(path.join(root, "not-a-pid"));

describe("scanSocketOwners", () => {
  for (const [name, scanner] of [["node fs", undefined], ["readlinkat", libcFdLinks()]] as const) {
    test(`finds owners and shared sockets (${name})`, () => {
      const owners = scanSocketOwners(root, undefined, scanner);
      expect(ownersOf(owners, 5001)).toEqual([100]);
      expect(ownersOf(owners, 5002)).toEqual([100, 200]);
      expect(ownersOf(owners, 5003)).toEqual([300]);
      expect(ownersOf(owners, 77)).toBeNull();
      expect(owners.owner.size).toBe(3);
    });
  }

  test("a missing /proc gives an empty map, not an error", () => {
    const owners = scanSocketOwners(path.join(root, "nope"));
    expect(owners.owner.size).toBe(0);
  });
});

describe("process details", () => {
  test("parseStat counts fields after the last parenthesis", () => {
    expect(parseStat("200 (a (weird) name) R 100 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 250 0 0")).toEqual({
      comm: "a (weird) name",
      ppid: 100,
      startTicks: 250,
    });
    expect(parseStat("garbage")).toBeNull();
  });

  test("ProcessReader reads name, command line, parent and start time", () => {
    const reader = new ProcessReader({ procRoot: root, users: new UserTable("/nonexistent"), clockTicks: 100 });
    const p = reader.read(100)!;
    expect(p.name).toBe("p100");
    expect(p.cmdline).toBe("/bin/p100 --flag two words");
    expect(p.ppid).toBe(1);
    expect(p.startTime).toBe(new Date(1700000000_000 + 123450).toISOString());
    expect(p.path).toBeNull(); // no exe link in the fake tree
    expect(reader.read(999)).toBeNull();
  });
});

describe("users", () => {
  test("first entry for a uid wins; junk lines are skipped", () => {
    const users = parsePasswd("root:x:0:0:root:/root:/bin/bash\n# comment\nbad line\ntoor:x:0:0::/:/bin/sh\nal:x:1000:1000::/home/al:/bin/sh\n");
    expect(users.get(0)).toBe("root");
    expect(users.get(1000)).toBe("al");
    expect(users.size).toBe(2);
  });
  test("unknown uids are shown as numbers", () => {
    expect(new UserTable("/nonexistent").name(4242)).toBe("4242");
    expect(new UserTable("/etc/passwd").name(0)).toBe("root");
  });
});
