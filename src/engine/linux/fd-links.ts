/**
 * A faster /proc/PID/fd scanner through libc: readlinkat on a directory descriptor into one
 * reused buffer, and the socket inode parsed from the bytes, so no path or link strings are made
 * for each of tens of thousands of descriptors.
 */
import fs from "node:fs";
import { koffi } from "../native/koffi-addon.ts";
import { rememberedFd, type FdLinkScanner } from "./process-map.ts";
import { libc } from "./libc.ts";

const O_RDONLY = 0;
const O_DIRECTORY = 0o200000;
const O_CLOEXEC = 0o2000000;
const EACCES = 13;
// "socket:[" in ASCII.
const PREFIX = [115, 111, 99, 107, 101, 116, 58, 91];

export function libcFdLinks(): FdLinkScanner {
  const k = koffi();
  const lib = k.load("libc.so.6");
  const open = lib.func("int open(const char *, int)");
  const readlinkat = lib.func("intptr_t readlinkat(int, const char *, _Out_ uint8_t *, size_t)");
  const close = libc().close;
  const buf = Buffer.alloc(64);
  return (fdDir, pid, visit, memo) => {
    const dirFd = open(fdDir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) as number;
    if (dirFd < 0) return k.errno() !== EACCES;
    try {
      let names: string[];
      try {
        names = fs.readdirSync(fdDir);
      } catch (err) {
        return (err as NodeJS.ErrnoException).code !== "EACCES";
      }
      for (const name of names) {
        const known = rememberedFd(memo, name);
        if (known !== undefined) {
          if (known !== 0) visit(pid, known);
          continue;
        }
        const n = Number(readlinkat(dirFd, name, buf, buf.length));
        if (n < 0) continue;
        if (n <= PREFIX.length + 1 || buf[n - 1] !== 93) {
          memo?.next.set(name, 0);
          continue;
        }
        let isSocket = true;
        for (let i = 0; i < PREFIX.length; i++) {
          if (buf[i] !== PREFIX[i]) {
            isSocket = false;
            break;
          }
        }
        if (!isSocket) {
          memo?.next.set(name, 0);
          continue;
        }
        let inode = 0;
        for (let i = PREFIX.length; i < n - 1; i++) inode = inode * 10 + (buf[i]! - 48);
        memo?.next.set(name, inode);
        visit(pid, inode);
      }
      return true;
    } finally {
      close(dirFd);
    }
  };
}
