/**
 * Owner scans repeated every refresh: descriptors read by the last scan are not read again while
 * their sockets are still in the dump, a socket the memo hides is still found when it is wanted,
 * and sockets closed since the dump do not send the scan through other namespaces' processes.
 * A directory shaped like /proc stands in for it, with both descriptor readers.
 */
import { afterAll, describe, expect, test } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { FdMemos, ownersOf, scanSocketOwners, type FdLinkScanner } from "../../src/engine/linux/process-map.ts";
import { libcFdLinks } from "../../src/engine/linux/fd-links.ts";

const roots: string[] = [];
afterAll(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});

function fakeProc() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "sw-memo-"));
  roots.push(root);
  fs.mkdirSync(path.join(root, "self", "ns"), { recursive: true });
  fs.symlinkSync("net:[4026531840]", path.join(root, "self", "ns", "net"));
  const proc = (pid: number, net: string, fds: Record<string, string>) => {
    const dir = path.join(root, String(pid));
    fs.mkdirSync(path.join(dir, "fd"), { recursive: true });
    fs.mkdirSync(path.join(dir, "ns"), { recursive: true });
    fs.symlinkSync(net, path.join(dir, "ns", "net"));
    fs.writeFileSync(path.join(dir, "stat"), `${pid} (p${pid}) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 ${pid * 10} 0 0\n`);
    for (const [fd, target] of Object.entries(fds)) fs.symlinkSync(target, path.join(dir, "fd", fd));
  };
  const repoint = (pid: number, fd: string, target: string) => {
    const link = path.join(root, String(pid), "fd", fd);
    fs.unlinkSync(link);
    fs.symlinkSync(target, link);
  };
  return { root, proc, repoint };
}

const everyOpen = (inodes: ReadonlySet<number>) => inodes;
const noneOpen = () => new Set<number>();

for (const [name, scanner] of [["node fs", undefined], ["readlinkat", libcFdLinks()]] as [string, FdLinkScanner | undefined][]) {
  describe(`owner scans with a memo (${name})`, () => {
    test("a descriptor seen before is not read again while its socket is in the dump; a wanted socket it hides is still found", () => {
      const { root, proc, repoint } = fakeProc();
      proc(100, "net:[4026531840]", { "3": "socket:[5001]", "4": "socket:[5002]", "5": "pipe:[77]" });
      proc(300, "net:[4026531840]", { "3": "socket:[5003]" });
      const memos = new FdMemos();
      const live = new Set([5001, 5002, 5003]);
      const first = scanSocketOwners(root, new Set(live), scanner, { memos, live, stillOpen: everyOpen });
      expect(ownersOf(first, 5003)).toEqual([300]);
      // fd 3 of 300 now holds another socket while 5003 lives on (held elsewhere): not read again.
      repoint(300, "3", "socket:[7003]");
      const unread = scanSocketOwners(root, new Set(), scanner, { memos, live, stillOpen: everyOpen });
      expect(ownersOf(unread, 5003)).toEqual([300]);
      expect(ownersOf(unread, 7003)).toBeNull();
      // Once 7003 is wanted and open, every process is read in full.
      const wanted = scanSocketOwners(root, new Set([7003]), scanner, { memos, live: new Set([...live, 7003]), stillOpen: everyOpen });
      expect(ownersOf(wanted, 7003)).toEqual([300]);
      expect(ownersOf(wanted, 5003)).toBeNull();
      expect(ownersOf(wanted, 5002)).toEqual([100]);
      // A socket gone from the dump is read again: its descriptor may hold another one now.
      repoint(100, "4", "socket:[8002]");
      const gone = scanSocketOwners(root, new Set([8002]), scanner, { memos, live: new Set([5001, 8002]), stillOpen: noneOpen });
      expect(ownersOf(gone, 8002)).toEqual([100]);
    });

    test("sockets closed since the dump do not send the scan through other namespaces", () => {
      const { root, proc } = fakeProc();
      proc(100, "net:[4026531840]", { "3": "socket:[5001]" });
      proc(400, "net:[4026530000]", { "3": "socket:[9001]" });
      const plain = scanSocketOwners(root, new Set([6666]), scanner);
      expect(ownersOf(plain, 9001)).toEqual([400]);
      const memos = new FdMemos();
      const closed = scanSocketOwners(root, new Set([6666]), scanner, { memos, live: new Set([5001, 6666]), stillOpen: noneOpen });
      expect(ownersOf(closed, 5001)).toEqual([100]);
      expect(ownersOf(closed, 9001)).toBeNull();
      const open = scanSocketOwners(root, new Set([6666]), scanner, { memos, live: new Set([5001, 6666]), stillOpen: everyOpen });
      expect(ownersOf(open, 9001)).toEqual([400]);
    });
  });
}
