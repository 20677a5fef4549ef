/**
 * The errno values the Linux engine tells apart, and how a failed call is named. The numbers are
 * the kernel's generic ones (include/uapi/asm-generic/errno-base.h and errno.h), the same on x64
 * and arm64, the two machines the engine runs on.
 */
import os from "node:os";
import { SystemCallError } from "../../errors.ts";

export const EPERM = 1;
export const ENOENT = 2;
export const ESRCH = 3;
export const EINTR = 4;
export const EBADF = 9;
export const EAGAIN = 11;
export const EACCES = 13;
export const EINVAL = 22;
export const ENOSYS = 38;
export const EPROTONOSUPPORT = 93;
export const EOPNOTSUPP = 95;
export const EAFNOSUPPORT = 97;
export const ENOBUFS = 105;

const ERRNO_NAMES = new Map<number, string>(
  Object.entries(os.constants.errno).map(([name, num]) => [num as number, name]),
);

export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
}

export function syscallError(call: string, errno: number): SystemCallError {
  return new SystemCallError(call, errno, errnoName(errno));
}
