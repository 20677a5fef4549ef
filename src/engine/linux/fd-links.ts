/**
 * A faster /proc/PID/fd scanner through libc: readlinkat on a directory descriptor into one
 * reused buffer, and the socket inode parsed from the bytes, so no path or link strings are made
 * for each of tens of thousands of descriptors.
 */
import { scanFdDirectory, type FdLinkScanner } from "./process-map.ts";
import { libc } from "./libc.ts";
import { EACCES } from "./errno.ts";

const O_RDONLY = 0;
const O_DIRECTORY = 0o200000;
const O_CLOEXEC = 0o2000000;
// "socket:[" in ASCII.
const PREFIX = [115, 111, 99, 107, 101, 116, 58, 91];

export function libcFdLinks(): FdLinkScanner {
  const { open, readlinkat, close, errno } = libc();
  const buf = Buffer.alloc(64);
  return (fdDir, pid, visit, memo) => {
    const dirFd = open(fdDir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirFd < 0) return errno() !== EACCES;
    try {
      return scanFdDirectory(fdDir, pid, visit, memo, (name) => {
        const n = readlinkat(dirFd, name, buf, buf.length);
        if (n < 0) return null;
        if (n <= PREFIX.length + 1 || buf[n - 1] !== 93) return 0;
        for (let i = 0; i < PREFIX.length; i++) if (buf[i] !== PREFIX[i]) return 0;
        let inode = 0;
        for (let i = PREFIX.length; i < n - 1; i++) inode = inode * 10 + (buf[i]! - 48);
        return inode;
      });
    } finally {
      close(dirFd);
    }
  };
}
