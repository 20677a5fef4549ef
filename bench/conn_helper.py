#!/usr/bin/python3
"""Hold N established loopback TCP connections for the list benchmark.

Usage: conn_helper.py N [--per-worker M] [--base-port P] [--lifetime SECONDS]

The connections are split over W = ceil(N / M) worker processes (forked from
this one), because one process may not be allowed enough descriptors for 2N
sockets: raising the hard RLIMIT_NOFILE needs CAP_SYS_RESOURCE, which
containers often drop. M defaults to what the current hard limit allows
(at most 8000). Worker w listens on 127.0.0.1:(P + w) and connects to it from
source addresses 127.0.0.2..127.0.0.65, bound with IP_BIND_ADDRESS_NO_PORT so
the kernel picks the local port at connect time per 4-tuple (ephemeral ports
do not run out). Every connection is accepted by the same worker, so in total
there are 2N established sockets plus W listeners.

Prints "ready N SOCKETS WORKERS" on stdout once every worker is established,
then waits until stdin closes (or the lifetime runs out, or SIGINT/SIGTERM)
and exits; workers exit when this process goes away. All sockets use
SO_LINGER 0, so closing resets them and leaves no TIME_WAIT entries behind.

Run it inside the benchmark's network namespace; traffic stays on loopback.
"""

import errno
import os
import resource
import select
import signal
import socket
import struct
import sys
import time

IP_BIND_ADDRESS_NO_PORT = 24
BATCH = 512  # connects in flight before draining accepts; well below somaxconn
SOURCE_ADDRS = 64
LINGER0 = struct.pack("ii", 1, 0)


def fail(msg: str, code: int = 2) -> None:
    sys.stderr.write("conn_helper[%d]: %s\n" % (os.getpid(), msg))
    sys.stderr.flush()
    os._exit(code)


def parse_args(argv):
    if len(argv) < 2:
        fail("usage: conn_helper.py N [--per-worker M] [--base-port P] [--lifetime S]")
    n = int(argv[1])
    per_worker = 0
    base_port = 20000
    lifetime = 600.0
    i = 2
    while i < len(argv):
        key = argv[i]
        if i + 1 >= len(argv):
            fail("missing value for " + key)
        val = argv[i + 1]
        if key == "--per-worker":
            per_worker = int(val)
        elif key == "--base-port":
            base_port = int(val)
        elif key == "--lifetime":
            lifetime = float(val)
        else:
            fail("unknown option " + key)
        i += 2
    if n < 1:
        fail("N must be at least 1")
    return n, per_worker, base_port, max(1.0, min(lifetime, 3600.0))


def fd_budget() -> int:
    """Raise the soft descriptor limit to the hard one; return the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def hold_connections(n: int, port: int, until: float) -> list:
    """Open one listener and n connections to it; return every socket."""
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
    ls.bind(("127.0.0.1", port))
    ls.listen(4096)
    ls.setblocking(False)
    listen_poll = select.poll()
    listen_poll.register(ls.fileno(), select.POLLIN)

    clients = []
    accepted = []
    pending = {}  # fd -> socket whose connect is still in progress

    def drain_accepts(want: int) -> None:
        while len(accepted) < want:
            try:
                s, _ = ls.accept()
            except BlockingIOError:
                if time.monotonic() > until:
                    fail("timed out accepting (%d of %d)" % (len(accepted), want))
                listen_poll.poll(50)
                continue
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
            accepted.append(s)

    def finish_connects() -> None:
        # poll(), not select(): descriptors go far beyond FD_SETSIZE.
        if not pending:
            return
        p = select.poll()
        for fd in pending:
            p.register(fd, select.POLLOUT)
        while pending:
            for fd, _ in p.poll(50):
                s = pending.pop(fd, None)
                if s is None:
                    continue
                p.unregister(fd)
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err != 0:
                    fail("connect failed: " + os.strerror(err))
            if pending and time.monotonic() > until:
                fail("timed out waiting for %d connects" % len(pending))

    for i in range(n):
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
        c.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        c.bind(("127.0.0.%d" % (2 + (i % SOURCE_ADDRS)), 0))
        c.setblocking(False)
        err = c.connect_ex(("127.0.0.1", port))
        if err == errno.EINPROGRESS:
            pending[c.fileno()] = c
        elif err != 0:
            fail("connect #%d failed: %s" % (i, os.strerror(err)))
        clients.append(c)
        if len(clients) % BATCH == 0:
            drain_accepts(len(clients))
            finish_connects()
    drain_accepts(n)
    finish_connects()
    return [ls] + clients + accepted


def wait_for_eof(fd: int, deadline: float) -> None:
    """Return when fd reaches EOF/error; exit with code 3 at the deadline."""
    p = select.poll()
    p.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            fail("lifetime over, exiting", 3)
        if p.poll(int(min(left, 5.0) * 1000) + 1):
            try:
                data = os.read(fd, 4096)
            except OSError:
                data = b""
            if not data:
                return


def worker(index: int, n: int, port: int, deadline: float, ready_w: int, life_r: int) -> None:
    setup_until = min(deadline, time.monotonic() + 300)
    socks = hold_connections(n, port, setup_until)
    os.write(ready_w, b"%d %d\n" % (index, len(socks)))
    os.close(ready_w)
    # The parent keeps the write end of the life pipe; EOF means it is gone.
    wait_for_eof(life_r, deadline)
    del socks
    os._exit(0)


def main() -> None:
    n, per_worker, base_port, lifetime = parse_args(sys.argv)
    deadline = time.monotonic() + lifetime
    hard = fd_budget()
    if per_worker <= 0:
        per_worker = min(8000, (hard - 64) // 2)
    if per_worker < 1 or 2 * per_worker + 16 > hard:
        fail("descriptor limit %d too low for %d connections per worker" % (hard, per_worker))
    workers = (n + per_worker - 1) // per_worker
    if base_port + workers > 32767:
        fail("listening ports would reach the ephemeral range")

    ready_r, ready_w = os.pipe()
    life_r, life_w = os.pipe()
    pids = []
    stop_on = (signal.SIGTERM, signal.SIGINT, signal.SIGALRM)

    def stop(code: int) -> None:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        os._exit(code)

    for sig in stop_on:
        signal.signal(sig, lambda *_: stop(0 if _[0] != signal.SIGALRM else 3))
    signal.alarm(int(lifetime) + 2)  # hard stop even if something below hangs

    left = n
    for w in range(workers):
        count = min(per_worker, left)
        left -= count
        pid = os.fork()
        if pid == 0:
            for sig in stop_on:
                signal.signal(sig, signal.SIG_DFL)
            signal.alarm(int(lifetime) + 2)
            os.close(ready_r)
            os.close(life_w)
            try:
                worker(w, count, base_port + w, deadline, ready_w, life_r)
            except BaseException as e:  # report and leave; the parent sees the short count
                fail("worker %d: %r" % (w, e))
            os._exit(0)
        pids.append(pid)
    os.close(ready_w)
    os.close(life_r)

    # Collect one line per worker; EOF early means a worker died.
    buf = b""
    sockets = 0
    seen = 0
    p = select.poll()
    p.register(ready_r, select.POLLIN | select.POLLHUP)
    while seen < workers:
        if time.monotonic() > deadline:
            fail("lifetime over during setup", 3)
        if not p.poll(1000):
            continue
        chunk = os.read(ready_r, 4096)
        if not chunk:
            sys.stderr.write("conn_helper: only %d of %d workers became ready\n" % (seen, workers))
            stop(2)
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            sockets += int(line.split()[1])
            seen += 1

    sys.stdout.write("ready %d %d %d\n" % (n, sockets, workers))
    sys.stdout.flush()

    wait_for_eof(sys.stdin.fileno(), deadline)
    stop(0)


if __name__ == "__main__":
    main()
