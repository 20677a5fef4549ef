#!/usr/bin/python3
"""Short loopback TCP connections at a steady rate, for the daemon benchmark.

Usage: churn_helper.py [--port P] [--close fin|rst] [--lifetime S] [--sources N]

A forked child (the server) listens on 127.0.0.1:P: for each connection it
reads one line, answers "ok\\n" and closes once the client has closed. This
process (the client) prints "ready P SERVERPID", then obeys lines on stdin:

  start R   make R connections a second, on a fixed schedule, until "stop":
            connect from 127.0.0.(2 + i % N):ephemeral (IP_BIND_ADDRESS_NO_PORT,
            so TIME_WAIT entries never exhaust the ports of one address), send
            one line, read the answer, close. With --close fin (default) the
            client closes normally, so its side of every connection spends
            60 s in TIME_WAIT as on a real server; with --close rst it closes
            with SO_LINGER 0 (a reset), leaving no TIME_WAIT behind.
            When the schedule falls more than a second behind, the missed slots
            are dropped and counted as late.
  mark      answer "mark OK FAILED LATE" (totals so far)
  stop      stop starting connections; answer "stopped OK FAILED LATE FIRSTERROR"

EOF on stdin ends both processes; so do SIGTERM/SIGINT and --lifetime
(SIGALRM). Run it inside the benchmark's network namespace.
"""

import os
import select
import signal
import socket
import struct
import sys
import time

IP_BIND_ADDRESS_NO_PORT = 24
LINGER0 = struct.pack("ii", 1, 0)
REQUEST = b"hello from the sockwarden daemon benchmark\n"


def fail(msg: str, code: int = 2) -> None:
    sys.stderr.write("churn_helper[%d]: %s\n" % (os.getpid(), msg))
    sys.stderr.flush()
    os._exit(code)


def parse_args(argv):
    opts = {"port": 18080, "close": "fin", "lifetime": 600.0, "sources": 64}
    i = 1
    while i < len(argv):
        key = argv[i]
        if not key.startswith("--") or key[2:] not in opts or i + 1 >= len(argv):
            fail("usage: churn_helper.py [--port P] [--close fin|rst] [--lifetime S] [--sources N]")
        name = key[2:]
        val = argv[i + 1]
        if name == "close":
            if val not in ("fin", "rst"):
                fail("--close must be fin or rst")
            opts[name] = val
        elif name in ("port", "sources"):
            opts[name] = int(val)
        else:
            opts[name] = float(val)
        i += 2
    opts["lifetime"] = max(1.0, min(opts["lifetime"], 3600.0))
    opts["sources"] = max(1, min(opts["sources"], 250))
    return opts


def server(listener: socket.socket, life_r: int, deadline: float) -> None:
    """Answer each connection's first line; close when the client has closed."""
    listener.setblocking(False)
    ep = select.epoll()
    ep.register(listener.fileno(), select.EPOLLIN)
    ep.register(life_r, select.EPOLLIN | select.EPOLLHUP)
    conns = {}
    while time.monotonic() < deadline:
        for fd, _ in ep.poll(0.5):
            if fd == life_r:
                os._exit(0)
            if fd == listener.fileno():
                while True:
                    try:
                        conn, _ = listener.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        break
                    conn.setblocking(False)
                    conns[conn.fileno()] = [conn, b""]
                    ep.register(conn.fileno(), select.EPOLLIN | select.EPOLLRDHUP)
                continue
            entry = conns.get(fd)
            if entry is None:
                continue
            conn = entry[0]
            try:
                data = conn.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data:
                entry[1] += data
                if b"\n" in entry[1]:
                    entry[1] = b""
                    try:
                        conn.send(b"ok\n")
                    except OSError:
                        pass
                continue
            ep.unregister(fd)
            del conns[fd]
            conn.close()
    os._exit(3)


def one_connection(i: int, port: int, sources: int, reset: bool) -> None:
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if reset:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
        c.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        c.bind(("127.0.0.%d" % (2 + i % sources), 0))
        c.settimeout(2.0)
        c.connect(("127.0.0.1", port))
        c.sendall(REQUEST)
        got = b""
        while b"\n" not in got:
            chunk = c.recv(64)
            if not chunk:
                raise OSError("server closed before answering")
            got += chunk
    finally:
        c.close()


def main() -> None:
    o = parse_args(sys.argv)
    deadline = time.monotonic() + o["lifetime"]
    signal.alarm(int(o["lifetime"]) + 2)

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("127.0.0.1", o["port"]))
    except OSError as e:
        fail("cannot listen on 127.0.0.1:%d: %s" % (o["port"], e))
    listener.listen(4096)

    life_r, life_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(life_w)
        signal.alarm(int(o["lifetime"]) + 2)
        try:
            server(listener, life_r, deadline)
        except BaseException as e:
            fail("server: %r" % (e,))
        os._exit(0)
    os.close(life_r)
    listener.close()

    def stop(*_):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os._exit(0)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM):
        signal.signal(sig, stop)

    sys.stdout.write("ready %d %d\n" % (o["port"], pid))
    sys.stdout.flush()

    ok = failed = late = 0
    first_error = "-"
    rate = 0.0
    next_at = 0.0
    i = 0
    buf = b""
    stdin_fd = sys.stdin.fileno()
    while time.monotonic() < deadline:
        now = time.monotonic()
        wait = 1.0 if rate <= 0 else max(0.0, next_at - now)
        r, _, _ = select.select([stdin_fd], [], [], wait)
        if r:
            chunk = os.read(stdin_fd, 4096)
            if not chunk:
                stop()
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                words = line.decode("ascii", "replace").split()
                if not words:
                    continue
                if words[0] == "start" and len(words) == 2:
                    rate = max(0.0, float(words[1]))
                    next_at = time.monotonic()
                elif words[0] == "mark":
                    sys.stdout.write("mark %d %d %d\n" % (ok, failed, late))
                elif words[0] == "stop":
                    rate = 0.0
                    sys.stdout.write("stopped %d %d %d %s\n" % (ok, failed, late, first_error))
                sys.stdout.flush()
            continue
        if rate <= 0:
            continue
        now = time.monotonic()
        if now < next_at:
            continue
        if now - next_at > 1.0:
            missed = int((now - next_at) * rate)
            late += missed
            next_at += missed / rate
        next_at += 1.0 / rate
        try:
            one_connection(i, o["port"], o["sources"], o["close"] == "rst")
            ok += 1
        except OSError as e:
            failed += 1
            if first_error == "-":
                first_error = ("%s" % (e,)).replace(" ", "_")[:120] or "error"
        i += 1
    stop()


if __name__ == "__main__":
    main()
