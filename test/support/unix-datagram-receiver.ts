/**
 * A bound AF_UNIX datagram socket that stands in for a syslog daemon's /dev/log, so the local
 * syslog sink can be read back. receive() never blocks; close() removes the path.
 */
import fs from "node:fs";
import { libc } from "../../src/engine/linux/libc.ts";
import { EAGAIN, EINTR, syscallError } from "../../src/engine/linux/errno.ts";
import { openDatagramSocket, sockaddrUn } from "../../src/engine/linux/unix-datagram.ts";

const MSG_DONTWAIT = 0x40;

export class UnixDatagramReceiver {
  private readonly fd: number;
  private readonly buf: Buffer;
  private closed = false;

  constructor(
    readonly path: string,
    maxDatagramBytes = 64 * 1024,
  ) {
    const { addr, length } = sockaddrUn(path);
    this.fd = openDatagramSocket();
    this.buf = Buffer.allocUnsafe(maxDatagramBytes);
    const c = libc();
    if (c.bind(this.fd, addr, length) < 0) {
      const errno = c.errno();
      c.close(this.fd);
      throw syscallError(`bind(${path})`, errno);
    }
  }

  /** One datagram (a copy), or null when none is waiting. */
  receive(): Buffer | null {
    const c = libc();
    for (let attempt = 0; attempt < 8; attempt++) {
      const n = c.recv(this.fd, this.buf, this.buf.length, MSG_DONTWAIT);
      if (n >= 0) return Buffer.from(this.buf.subarray(0, n));
      const errno = c.errno();
      if (errno === EAGAIN) return null;
      if (errno !== EINTR) throw syscallError(`recv(${this.path})`, errno);
    }
    return null;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    libc().close(this.fd);
    try {
      // The socket file stays behind after close; nothing else will remove it.
      fs.unlinkSync(this.path);
    } catch {
      // Already gone.
    }
  }
}
