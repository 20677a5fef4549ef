"""What every mode of traffic.py shares: naming a process, flags, listening, the server child that
serves every connection and ends with its parent, the lifetime limit, and a fixed-rate schedule."""

import ctypes
import errno
import json
import os
import select
import signal
import socket
import struct
import sys
import time

IP_BIND_ADDRESS_NO_PORT = 24
LINGER0 = struct.pack("ii", 1, 0)
PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
MODE = sys.argv[1] if len(sys.argv) > 1 else ""
_libc = ctypes.CDLL(None, use_errno=True)


def fail(msg, code=2):
    sys.stderr.write("traffic %s[%d]: %s\n" % (MODE, os.getpid(), msg))
    sys.stderr.flush()
    os._exit(code)


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def now_ms():
    return time.time() * 1000.0


def errname(code):
    return errno.errorcode.get(code, str(code))


def set_name(name):
    """The kernel's name of this process (comm), which is what a watcher reports and rules match."""
    if _libc.prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0) != 0:
        fail("prctl(PR_SET_NAME) failed: %s" % os.strerror(ctypes.get_errno()))


def positional(argv, names, optional=()):
    """NAME ... positional arguments, then up to len(optional) more (None where absent)."""
    if len(argv) < len(names) or len(argv) > len(names) + len(optional):
        fail("usage: traffic.py %s %s%s" % (MODE, " ".join(names), "".join(" [%s]" % o for o in optional)))
    return list(argv) + [None] * (len(names) + len(optional) - len(argv))


def parse_flags(argv, defaults, required=(), max_lifetime=3600.0):
    """--key value pairs; each value takes the type of its default; --lifetime is bounded."""
    opts = dict(defaults)
    i = 0
    while i < len(argv):
        key = argv[i][2:] if argv[i].startswith("--") else None
        if key not in opts or i + 1 >= len(argv):
            fail("usage: traffic.py %s %s" % (MODE, " ".join("[--%s %s]" % kv for kv in defaults.items())))
        kind = type(defaults[key]) if defaults[key] is not None else str
        try:
            opts[key] = kind(argv[i + 1])
        except ValueError:
            fail("--%s: bad value %r" % (key, argv[i + 1]))
        i += 2
    for key in required:
        if opts[key] is None:
            fail("--%s is required" % key)
    opts["lifetime"] = max(1.0, min(float(opts["lifetime"]), max_lifetime))
    return opts


def parse_json(argv):
    try:
        cfg = json.loads(argv[0]) if argv else {}
    except ValueError as e:
        fail("CONFIG_JSON: %s" % e)
    if not isinstance(cfg, dict):
        fail("CONFIG_JSON must be an object")
    return cfg


def listen(host, port, backlog, v6only=False):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if v6only:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    try:
        s.bind((host, port))
    except OSError as e:
        fail("cannot listen on %s:%d: %s" % (host, port, e))
    s.listen(backlog)
    return s


def serve(listeners, life_fd, deadline, reset_accepted=False):
    """Serves every connection of every listener at once, each by what it sends: a line is
    answered "ok\\n"; a "p" makes this side close first (the peer closes); anything else is held
    until the client closes or resets it. Exits 0 at end of input on life_fd (the parent is gone,
    or stdin closed); returns at the deadline."""
    ep = select.epoll()
    by_fd = {}
    for s in listeners:
        s.setblocking(False)
        by_fd[s.fileno()] = s
        ep.register(s.fileno(), select.EPOLLIN)
    ep.register(life_fd, select.EPOLLIN | select.EPOLLHUP)
    conns = {}  # fd -> [socket, bytes of an unfinished line]
    while time.monotonic() < deadline:
        for fd, _ in ep.poll(0.5):
            if fd == life_fd:
                if not os.read(fd, 4096):
                    os._exit(0)
                continue
            listener = by_fd.get(fd)
            if listener is not None:
                # Many waiting at once: a burst fills the accept queue faster than one a wake-up.
                for _ in range(256):
                    try:
                        conn, _ = listener.accept()
                    except ConnectionAbortedError:
                        continue
                    except OSError:
                        break
                    if reset_accepted:
                        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
                    conn.setblocking(False)
                    conns[conn.fileno()] = [conn, b""]
                    ep.register(conn.fileno(), select.EPOLLIN | select.EPOLLRDHUP)
                continue
            entry = conns.get(fd)
            if entry is None:
                continue
            try:
                data = entry[0].recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if data:
                entry[1] += data
                if b"\n" in entry[1]:
                    entry[1] = b""
                    try:
                        entry[0].send(b"ok\n")
                    except OSError:
                        pass
                    continue
                if b"p" not in data:
                    continue
            # End of stream, an error, or "p": this side closes.
            ep.unregister(fd)
            del conns[fd]
            entry[0].close()


def die_with_parent():
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGALRM)


class Family:
    """This process and the children it forks, all bounded by one lifetime. A child ends with its
    parent twice over: PR_SET_PDEATHSIG, and end of input on a pipe only the parent writes (a
    child that blocks signals still sees it). SIGTERM, SIGINT and the parent's own alarm
    (lifetime + grace) kill every child and exit."""

    def __init__(self, lifetime, grace=2, code=0, alarm_code=None):
        self.lifetime = lifetime
        self.kids = []
        self.life_r, self.life_w = os.pipe()
        for sig in STOP_SIGNALS:
            exit_code = alarm_code if sig == signal.SIGALRM and alarm_code is not None else code
            signal.signal(sig, lambda *_, c=exit_code: self.stop(c))
        signal.alarm(int(lifetime) + grace)

    def fork(self, fn, name=None):
        """Runs fn() in a child named name; returns the child's PID. The child exits 0 when fn
        returns, 3 (saying why) when it raises."""
        pid = os.fork()
        if pid != 0:
            self.kids.append(pid)
            return pid
        try:
            for sig in STOP_SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
            signal.alarm(int(self.lifetime) + 5)
            os.close(self.life_w)
            if name:
                set_name(name)
            die_with_parent()
            fn()
        except BaseException as e:
            fail("%s: %r" % (name or "child", e), 3)
        os._exit(0)

    def serve(self, listeners, name=None, reset_accepted=False):
        """Forks the server child for listeners (closed here once it has them)."""
        deadline = time.monotonic() + self.lifetime

        def run():
            serve(listeners, self.life_r, deadline, reset_accepted)
            os._exit(3)

        pid = self.fork(run, name)
        for s in listeners:
            s.close()
        return pid

    def stop(self, code=0):
        for pid in self.kids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        os._exit(code)


class Schedule:
    """A fixed-rate schedule; when it falls more than a second behind, missed slots are dropped
    and counted as late."""

    def __init__(self, rate):
        self.rate = rate
        self.next_at = time.monotonic()
        self.late = 0

    def take(self, now):
        """Whether a slot is due by now; takes it if so."""
        if self.rate <= 0 or now < self.next_at:
            return False
        if now - self.next_at > 1.0:
            missed = int((now - self.next_at) * self.rate)
            self.late += missed
            self.next_at += missed / self.rate
        self.next_at += 1.0 / self.rate
        return True

    def due(self, now):
        """How many slots are due by now (at most 1000); takes them all."""
        n = 0
        while n < 1000 and self.take(now):
            n += 1
        return n

    def wait(self, now):
        return 1.0 if self.rate <= 0 else max(0.0, self.next_at - now)


def source_socket(source, reset=False):
    """A TCP socket bound to the address source, its port left to connect: with
    IP_BIND_ADDRESS_NO_PORT the kernel picks it per 4-tuple, so many connections from few
    addresses do not run out of ephemeral ports. reset: SO_LINGER 0, so closing sends a reset and
    leaves no TIME_WAIT."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if reset:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
        s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        s.bind((source, 0))
    except OSError:
        s.close()
        raise
    return s


def close_as(s, how, peer_timeout, tolerant=False):
    """Ends a client connection: "normal" closes it, "reset" with SO_LINGER 0 (RST), "peer" waits
    for the server to close first (it has been sent a "p"). tolerant: a read error while waiting
    ends the wait instead of raising."""
    if how == "peer":
        s.settimeout(peer_timeout)
        try:
            while s.recv(4096):
                pass
        except OSError:
            if not tolerant:
                raise
    elif how == "reset":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
    s.close()
