/**
 * Every libc call the Linux engine makes, bound through koffi from one load of libc. Raw bindings
 * only: callers turn return codes into errors (errno.ts names them).
 *
 * Each function is bound on its first use, not all at once: a symbol this libc lacks then fails
 * only the feature that needs it, and a program that never closes a socket never binds connect().
 *
 * `poll` is the one binding whose koffi async call is used (fd-waiter.ts): under Bun, two koffi
 * async calls in flight at once crashed the process (see the design notes), so no other call here
 * may be run asynchronously.
 */
import { koffi, type KoffiModule } from "../native/koffi-addon.ts";

type LibraryHandle = ReturnType<KoffiModule["load"]>;

// Syscalls without a glibc wrapper everywhere; the same numbers on every architecture since the
// syscall tables were unified.
const SYS_pidfd_send_signal = 424;
const SYS_pidfd_open = 434;
const SYS_pidfd_getfd = 438;

export type PollCall = ((fds: Buffer, nfds: number, timeout: number) => number) & {
  async(fds: Buffer, nfds: number, timeout: number, done: (err: unknown, result: number) => void): void;
};

export interface Libc {
  // Sockets.
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Buffer, len: number): number;
  connect(fd: number, addr: Buffer, len: number): number;
  shutdown(fd: number, how: number): number;
  sendto(fd: number, buf: Buffer, len: number, flags: number, addr: Buffer, addrlen: number): number;
  recv(fd: number, buf: Buffer, len: number, flags: number): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer, len: number): number;
  // Descriptors and files.
  open(path: string, flags: number): number;
  close(fd: number): number;
  write(fd: number, buf: Buffer, count: number): number;
  readlinkat(dirFd: number, path: string, buf: Buffer, size: number): number;
  eventfd(initval: number, flags: number): number;
  poll: PollCall;
  ioctl(...args: unknown[]): number;
  mmap(addr: null, length: number, prot: number, flags: number, fd: number, offset: number): unknown;
  munmap(addr: unknown, length: number): number;
  mount(source: string, target: string, type: string, flags: number, data: null): number;
  umount2(target: string, flags: number): number;
  // Processes, namespaces, the clock.
  setns(fd: number, nstype: number): number;
  prctl(option: number, arg2: number, arg3: number, arg4: number, arg5: number): number;
  pidfdOpen(pid: number): number;
  pidfdGetfd(pidfd: number, fd: number): number;
  pidfdSendSignal(pidfd: number, signal: number): number;
  sysconf(name: number): number;
  clockGettime(clock: number, ts: Buffer): number;
  /** syscall(2) with a type string before each variadic argument, as koffi wants them. */
  syscall(...args: unknown[]): number | bigint;
  errno(): number;
}

type Binders = { [K in keyof Libc]: (lib: LibraryHandle, k: KoffiModule) => Libc[K] };

const binders: Binders = {
  socket: (lib) => {
    const f = lib.func("int socket(int, int, int)");
    return (d, t, p) => f(d, t, p) as number;
  },
  bind: (lib) => {
    const f = lib.func("int bind(int, const void *, uint32_t)");
    return (fd, a, l) => f(fd, a, l) as number;
  },
  connect: (lib) => {
    const f = lib.func("int connect(int, const void *, uint32_t)");
    return (fd, a, l) => f(fd, a, l) as number;
  },
  shutdown: (lib) => {
    const f = lib.func("int shutdown(int, int)");
    return (fd, how) => f(fd, how) as number;
  },
  sendto: (lib) => {
    const f = lib.func("intptr_t sendto(int, const void *, size_t, int, const void *, uint32_t)");
    return (fd, b, l, fl, a, al) => Number(f(fd, b, l, fl, a, al));
  },
  recv: (lib) => {
    const f = lib.func("intptr_t recv(int, _Out_ void *, size_t, int)");
    return (fd, b, l, fl) => Number(f(fd, b, l, fl));
  },
  setsockopt: (lib) => {
    const f = lib.func("int setsockopt(int, int, int, const void *, uint32_t)");
    return (fd, lv, n, v, l) => f(fd, lv, n, v, l) as number;
  },
  open: (lib) => {
    const f = lib.func("int open(const char *, int)");
    return (path, flags) => f(path, flags) as number;
  },
  close: (lib) => {
    const f = lib.func("int close(int)");
    return (fd) => f(fd) as number;
  },
  write: (lib) => {
    const f = lib.func("intptr_t write(int, const void *, size_t)");
    return (fd, b, n) => Number(f(fd, b, n));
  },
  readlinkat: (lib) => {
    const f = lib.func("intptr_t readlinkat(int, const char *, _Out_ uint8_t *, size_t)");
    return (dirFd, path, buf, size) => Number(f(dirFd, path, buf, size));
  },
  eventfd: (lib) => {
    const f = lib.func("int eventfd(unsigned int, int)");
    return (initval, flags) => f(initval, flags) as number;
  },
  poll: (lib) => lib.func("int poll(void *, unsigned long, int)") as PollCall,
  ioctl: (lib) => lib.func("int ioctl(int fd, unsigned long request, ...)") as Libc["ioctl"],
  mmap: (lib) => lib.func("void *mmap(void *addr, size_t length, int prot, int flags, int fd, long offset)") as Libc["mmap"],
  munmap: (lib) => lib.func("int munmap(void *addr, size_t length)") as Libc["munmap"],
  mount: (lib) =>
    lib.func("int mount(const char *source, const char *target, const char *type, unsigned long flags, const void *data)") as Libc["mount"],
  umount2: (lib) => lib.func("int umount2(const char *target, int flags)") as Libc["umount2"],
  setns: (lib) => {
    const f = lib.func("int setns(int, int)");
    return (fd, type) => f(fd, type) as number;
  },
  prctl: (lib) => lib.func("int prctl(int, unsigned long, unsigned long, unsigned long, unsigned long)") as Libc["prctl"],
  pidfdOpen: (lib) => {
    const f = lib.func("syscall", "long", ["long", "int", "uint"]);
    return (pid) => Number(f(SYS_pidfd_open, pid, 0));
  },
  pidfdGetfd: (lib) => {
    const f = lib.func("syscall", "long", ["long", "int", "int", "uint"]);
    return (pidfd, fd) => Number(f(SYS_pidfd_getfd, pidfd, fd, 0));
  },
  pidfdSendSignal: (lib) => {
    const f = lib.func("syscall", "long", ["long", "int", "int", "void *", "uint"]);
    return (pidfd, signal) => Number(f(SYS_pidfd_send_signal, pidfd, signal, null, 0));
  },
  sysconf: (lib) => {
    const f = lib.func("long sysconf(int)");
    return (n) => Number(f(n));
  },
  clockGettime: (lib) => lib.func("int clock_gettime(int, _Out_ void *)") as Libc["clockGettime"],
  syscall: (lib) => lib.func("long syscall(long nr, ...)") as Libc["syscall"],
  errno: (_lib, k) => () => k.errno(),
};

let library: LibraryHandle | null = null;
let calls: Libc | null = null;

/** The bindings; throws when koffi or libc cannot be loaded, and each call when libc lacks it. */
export function libc(): Libc {
  if (calls) return calls;
  const k = koffi();
  const lib = (library ??= k.load("libc.so.6"));
  const facade = {} as Libc;
  for (const name of Object.keys(binders) as (keyof Libc)[]) {
    Object.defineProperty(facade, name, {
      configurable: true,
      enumerable: true,
      get() {
        const bound = binders[name](lib, k);
        // Replaced by the function itself, so a hot call (one readlinkat per descriptor) pays for the getter once.
        Object.defineProperty(facade, name, { value: bound, enumerable: true });
        return bound;
      },
    });
  }
  calls = facade;
  return calls;
}
