/**
 * AF_UNIX datagram sockets, for the local syslog socket (/dev/log): Bun's dgram has no unix
 * sockets. The sender is unconnected and names the path on every send, as syslog(3) reconnects
 * on failure: when the syslog daemon restarts and makes a new socket, the next send reaches it.
 * Sends never block (MSG_DONTWAIT): a full receiver answers EAGAIN instead of stalling the caller.
 */
import { libc } from "./libc.ts";
import { EBADF, EINTR, syscallError } from "./errno.ts";

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;

/** sizeof(struct sockaddr_un): sa_family_t (2 bytes) then sun_path[108] (linux/un.h). */
const SOCKADDR_UN_BYTES = 110;
const SUN_PATH_OFFSET = 2;
const SUN_PATH_MAX = 108;

/** struct sockaddr_un for a filesystem path, and the length to pass with it. */
export function sockaddrUn(path: string): { addr: Buffer; length: number } {
  const bytes = Buffer.from(path);
  // The path needs its terminating NUL inside sun_path.
  if (bytes.length === 0 || bytes.length >= SUN_PATH_MAX) {
    throw new RangeError(`a unix socket path must be 1 to ${SUN_PATH_MAX - 1} bytes: ${path}`);
  }
  const addr = Buffer.alloc(SOCKADDR_UN_BYTES);
  addr.writeUInt16LE(AF_UNIX, 0);
  bytes.copy(addr, SUN_PATH_OFFSET);
  return { addr, length: SUN_PATH_OFFSET + bytes.length + 1 };
}

export function openDatagramSocket(): number {
  const c = libc();
  const fd = c.socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw syscallError("socket(AF_UNIX, SOCK_DGRAM)", c.errno());
  return fd;
}

export class UnixDatagramSender {
  private readonly fd: number;
  private readonly target: { addr: Buffer; length: number };
  private closed = false;

  constructor(readonly path: string) {
    this.target = sockaddrUn(path);
    this.fd = openDatagramSocket();
  }

  /** Sends one datagram; throws SystemCallError (ENOENT, ECONNREFUSED, EAGAIN, EMSGSIZE ...). */
  send(data: Uint8Array): void {
    if (this.closed) throw syscallError(`sendto(${this.path})`, EBADF);
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const c = libc();
    for (let attempt = 0; attempt < 8; attempt++) {
      const n = c.sendto(this.fd, buf, buf.length, MSG_DONTWAIT | MSG_NOSIGNAL, this.target.addr, this.target.length);
      if (n === buf.length) return;
      const errno = n < 0 ? c.errno() : 0;
      if (errno === EINTR) continue;
      throw syscallError(`sendto(${this.path})`, errno);
    }
    throw syscallError(`sendto(${this.path})`, EINTR);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    libc().close(this.fd);
  }
}

export function openUnixDatagram(path: string): UnixDatagramSender {
  return new UnixDatagramSender(path);
}
