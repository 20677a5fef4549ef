/**
 * The few libc calls the Linux engine needs, bound through koffi. Raw bindings only: callers turn
 * return codes into errors.
 */
import { koffi } from "../native/koffi-addon.ts";
import { SystemCallError } from "../../errors.ts";
import os from "node:os";

export interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Buffer, len: number): number;
  sendto(fd: number, buf: Buffer, len: number, flags: number, addr: Buffer, addrlen: number): number;
  recv(fd: number, buf: Buffer, len: number, flags: number): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer, len: number): number;
  close(fd: number): number;
  sysconf(name: number): number;
  open(path: string, flags: number): number;
  setns(fd: number, nstype: number): number;
  errno(): number;
}

let bound: Libc | null = null;

export function libc(): Libc {
  if (bound) return bound;
  const k = koffi();
  const lib = k.load("libc.so.6");
  const socket = lib.func("int socket(int, int, int)");
  const bind = lib.func("int bind(int, const void *, uint32_t)");
  const sendto = lib.func("intptr_t sendto(int, const void *, size_t, int, const void *, uint32_t)");
  const recv = lib.func("intptr_t recv(int, _Out_ void *, size_t, int)");
  const setsockopt = lib.func("int setsockopt(int, int, int, const void *, uint32_t)");
  const close = lib.func("int close(int)");
  const sysconf = lib.func("long sysconf(int)");
  const open = lib.func("int open(const char *, int)");
  const setns = lib.func("int setns(int, int)");
  bound = {
    socket: (d, t, p) => socket(d, t, p) as number,
    bind: (fd, a, l) => bind(fd, a, l) as number,
    sendto: (fd, b, l, f, a, al) => Number(sendto(fd, b, l, f, a, al)),
    recv: (fd, b, l, f) => Number(recv(fd, b, l, f)),
    setsockopt: (fd, lv, n, v, l) => setsockopt(fd, lv, n, v, l) as number,
    close: (fd) => close(fd) as number,
    sysconf: (n) => Number(sysconf(n)),
    open: (path, flags) => open(path, flags) as number,
    setns: (fd, type) => setns(fd, type) as number,
    errno: () => k.errno(),
  };
  return bound;
}

const ERRNO_NAMES = new Map<number, string>(
  Object.entries(os.constants.errno).map(([name, num]) => [num as number, name]),
);

export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
}

export function syscallError(call: string, errno: number): SystemCallError {
  return new SystemCallError(call, errno, errnoName(errno));
}
