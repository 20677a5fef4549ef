/**
 * Waits for any of a few descriptors to become readable without blocking the event loop: one
 * poll(2) run through koffi on a worker thread, re-armed from its own callback, plus an eventfd
 * that stop() writes to so the poll returns and the descriptors can be closed.
 *
 * Only one such call is ever in flight: under Bun, two koffi async calls at once crashed the
 * process (see the design notes), so nothing else in the program may use koffi's async calls.
 */
import { libc } from "./libc.ts";
import { syscallError } from "./errno.ts";

const POLLIN = 0x1;
const POLLERR = 0x8;
const POLLNVAL = 0x20;
const EFD_NONBLOCK = 0o4000;
const EFD_CLOEXEC = 0o2000000;
const POLLFD_SIZE = 8;

export class FdWaiter {
  private readonly wakeFd: number;
  private readonly pollfds: Buffer;
  private stopping = false;
  private inFlight = false;
  /** Polls that returned (for measurements). */
  wakeups = 0;

  /** Calls `ready` (on the event loop) each time one of `fds` is readable. */
  constructor(
    fds: readonly number[],
    private readonly ready: () => void,
  ) {
    const b = libc();
    this.wakeFd = b.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (this.wakeFd < 0) throw syscallError("eventfd", b.errno());
    const all = [...fds, this.wakeFd];
    this.pollfds = Buffer.alloc(all.length * POLLFD_SIZE);
    all.forEach((fd, i) => {
      this.pollfds.writeInt32LE(fd, i * POLLFD_SIZE);
      this.pollfds.writeInt16LE(POLLIN, i * POLLFD_SIZE + 4);
    });
    this.arm();
  }

  private arm(): void {
    for (let i = 0; i < this.pollfds.length; i += POLLFD_SIZE) this.pollfds.writeInt16LE(0, i + 6);
    this.inFlight = true;
    libc().poll.async(this.pollfds, this.pollfds.length / POLLFD_SIZE, -1, (err, result) => {
      this.inFlight = false;
      if (this.stopping) {
        libc().close(this.wakeFd);
        return;
      }
      this.wakeups++;
      if (err || result < 0 || this.broken()) {
        // A descriptor gone bad would make every poll return at once: stop waiting (the caller's
        // slower reading still runs).
        this.stopping = true;
        libc().close(this.wakeFd);
        return;
      }
      if (result > 0) {
        try {
          this.ready();
        } catch {
          // The reader reports its own errors; waiting goes on.
        }
      }
      this.arm();
    });
  }

  private broken(): boolean {
    for (let i = 0; i < this.pollfds.length; i += POLLFD_SIZE) {
      if (this.pollfds.readInt16LE(i + 6) & (POLLERR | POLLNVAL)) return true;
    }
    return false;
  }

  /** Ends the wait; the descriptors given may be closed once this returns (poll holds its own). */
  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    if (!this.inFlight) {
      libc().close(this.wakeFd);
      return;
    }
    const one = Buffer.alloc(8);
    one.writeBigUInt64LE(1n);
    libc().write(this.wakeFd, one, 8);
  }
}
