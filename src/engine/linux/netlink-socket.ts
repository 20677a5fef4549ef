/**
 * A NETLINK_SOCK_DIAG socket: open, send a request, read replies. Byte handling lives in
 * sock-diag-codec.ts; this module only moves buffers across the system call boundary.
 */
import { libc, type Libc } from "./libc.ts";
import { EAGAIN, EINTR, ENOBUFS, syscallError } from "./errno.ts";

/** The system calls a netlink socket makes; tests pass their own to make EINTR or short reads. */
export type NetlinkCalls = Pick<Libc, "socket" | "bind" | "sendto" | "recv" | "setsockopt" | "close" | "errno">;

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
export const NETLINK_SOCK_DIAG = 4;
const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
const MSG_DONTWAIT = 0x40;

/** The kernel fills a dump datagram up to 32 KiB; twice that leaves room. */
const RECV_BUFFER_BYTES = 64 * 1024;

export class NetlinkSocket {
  readonly fd: number;
  private readonly recvBuf = Buffer.allocUnsafe(RECV_BUFFER_BYTES);
  private closed = false;

  constructor(
    protocol = NETLINK_SOCK_DIAG,
    private readonly sys: NetlinkCalls = libc(),
  ) {
    const c = sys;
    const fd = c.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
    if (fd < 0) throw syscallError("socket(AF_NETLINK)", c.errno());
    this.fd = fd;
    const size = Buffer.alloc(4);
    size.writeInt32LE(1 << 20);
    // A bigger receive buffer keeps the kernel from dropping event bursts; failure is harmless.
    c.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, size, 4);
  }

  /** Subscribes to multicast groups (bitmask, bit n-1 for group n). */
  bindGroups(groups: number): void {
    const addr = Buffer.alloc(12);
    addr.writeUInt16LE(AF_NETLINK, 0);
    addr.writeUInt32LE(0, 4);
    addr.writeUInt32LE(groups >>> 0, 8);
    const c = this.sys;
    if (c.bind(this.fd, addr, 12) < 0) throw syscallError("bind(AF_NETLINK)", c.errno());
  }

  send(message: Buffer): void {
    const kernel = Buffer.alloc(12);
    kernel.writeUInt16LE(AF_NETLINK, 0);
    const c = this.sys;
    for (let attempt = 0; attempt < 8; attempt++) {
      const n = c.sendto(this.fd, message, message.length, 0, kernel, 12);
      if (n === message.length) return;
      const errno = c.errno();
      if (n < 0 && errno === EINTR) continue;
      throw syscallError("sendto(netlink)", n < 0 ? errno : 0);
    }
    throw syscallError("sendto(netlink)", EINTR);
  }

  /** Reads one datagram; returns a view into an internal buffer valid until the next call. */
  receive(): Buffer {
    const c = this.sys;
    for (let attempt = 0; attempt < 8; attempt++) {
      const n = c.recv(this.fd, this.recvBuf, this.recvBuf.length, 0);
      if (n >= 0) return this.recvBuf.subarray(0, n);
      const errno = c.errno();
      if (errno !== EINTR) throw syscallError("recv(netlink)", errno);
    }
    throw syscallError("recv(netlink)", EINTR);
  }

  /**
   * Reads one datagram if one is queued. "overflow" means the kernel dropped messages because
   * the receive buffer was full (ENOBUFS); the socket stays usable.
   */
  receiveNonBlocking(): Buffer | "empty" | "overflow" {
    const c = this.sys;
    for (let attempt = 0; attempt < 8; attempt++) {
      const n = c.recv(this.fd, this.recvBuf, this.recvBuf.length, MSG_DONTWAIT);
      if (n >= 0) return this.recvBuf.subarray(0, n);
      const errno = c.errno();
      if (errno === EAGAIN) return "empty";
      if (errno === ENOBUFS) return "overflow";
      if (errno !== EINTR) throw syscallError("recv(netlink)", errno);
    }
    return "empty";
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sys.close(this.fd);
  }
}
