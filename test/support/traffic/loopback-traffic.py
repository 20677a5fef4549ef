#!/usr/bin/python3
"""Loopback TCP traffic for the benchmarks, one mode at a time. Run it inside a network namespace
the caller made; nothing leaves its loopback.

Usage: loopback-traffic.py MODE [--flag VALUE ...]

Every mode but hold forks one server child that listens on 127.0.0.1:PORT and serves each
connection by what it sends: a chunk ending in a newline is answered "ok\\n"; a chunk with a "p"
makes the server close first (the peer closes); anything else is held until the client goes. The
server ends with its parent (a pipe it watches, and PR_SET_DEATHSIG) and after --lifetime.

  hold    --connections N [--per-worker M] [--base-port P] [--lifetime S]
          N established connections, split over W = ceil(N / M) forked workers (one process may
          not be allowed 2N descriptors: raising the hard RLIMIT_NOFILE needs CAP_SYS_RESOURCE).
          M defaults to what the hard limit allows (at most 8000). Worker w listens on
          127.0.0.1:(P + w) and connects to itself from 127.0.0.2..65 (IP_BIND_ADDRESS_NO_PORT:
          the kernel picks the port per 4-tuple, so ephemeral ports do not run out): 2N sockets
          plus W listeners, all SO_LINGER 0 (closing leaves no TIME_WAIT). Prints
          "ready N SOCKETS WORKERS", then waits until stdin closes.
  churn   [--port P] [--close fin|rst] [--sources N] [--lifetime S]
          Prints "ready P SERVERPID", then obeys stdin: "start R" makes R connections a second on
          a fixed schedule (from 127.0.0.(2 + i % N), send one line, read the answer, close:
          normally, leaving 60 s of TIME_WAIT as on a real server, or with a reset); slots more
          than a second behind are dropped and counted late. "mark" answers "mark OK FAILED
          LATE"; "stop" stops and answers "stopped OK FAILED LATE FIRSTERROR".
  beacon  --port P [--name NAME] [--lifetime S]
          Names itself NAME (default sw-beacon; the server NAME-srv) before any socket, prints
          "ready P SERVERPID" and obeys stdin: "hold" opens one connection and keeps it
          ("held LOCALPORT"); "burst N SEED" makes N connections one after another, each open
          1-5 ms, closed normally (fin), with a reset (rst) or by the server (peer), 0-5 ms apart,
          and prints {"pid", "ms", "conns": [{"port", "mode", "holdMs"}]}; "quit" exits. It lives
          on after its connections, so a watcher can still find it by its PID.
  victim  [--port 25] [--samples N] [--gap-max S] [--timeout S] [--seed N] [--name NAME] [--lifetime S]
          Named NAME (default sw-victim, not a mail server's name; the server NAME-sink, which
          holds every connection and resets it when it ends). Prints "ready P SINKPID", waits for
          "go", then N times: sleeps uniform [0, gap-max], connects, and blocks in recv() until
          it fails (the daemon destroyed the socket), returns EOF, or the timeout passes; prints
          {"i", "port", "connectWallMs", "latencyMs" (monotonic, connect returned -> recv
          ended), "result", "gapMs"}. Then "done N". "quit" or EOF on stdin stops it.

Every mode exits by itself after --lifetime seconds (default 600, at most 3600).
"""

import ctypes
import errno
import json
import os
import random
import resource
import select
import signal
import socket
import struct
import sys
import time

HOST = "127.0.0.1"
IP_BIND_ADDRESS_NO_PORT = 24
LINGER0 = struct.pack("ii", 1, 0)
MODE = sys.argv[1] if len(sys.argv) > 1 else ""


def fail(msg, code=2):
    sys.stderr.write("loopback-traffic %s[%d]: %s\n" % (MODE, os.getpid(), msg))
    sys.stderr.flush()
    os._exit(code)


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def set_name(name):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(15, name.encode()[:15], 0, 0, 0) != 0:  # PR_SET_NAME
        fail("prctl(PR_SET_NAME) failed: %s" % os.strerror(ctypes.get_errno()))


def parse_flags(argv, defaults, required=()):
    """--key value pairs; each value takes the type of its default."""
    opts = dict(defaults)
    i = 0
    while i < len(argv):
        key = argv[i][2:] if argv[i].startswith("--") else None
        if key not in opts or i + 1 >= len(argv):
            fail("usage: loopback-traffic.py %s %s" % (MODE, " ".join("[--%s %s]" % kv for kv in defaults.items())))
        kind = type(defaults[key]) if defaults[key] is not None else str
        try:
            opts[key] = kind(argv[i + 1])
        except ValueError:
            fail("--%s: bad value %r" % (key, argv[i + 1]))
        i += 2
    for key in required:
        if opts[key] is None:
            fail("--%s is required" % key)
    opts["lifetime"] = max(1.0, min(float(opts["lifetime"]), 3600.0))
    return opts


def listen(port, backlog):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((HOST, port))
    except OSError as e:
        fail("cannot listen on %s:%d: %s" % (HOST, port, e))
    listener.listen(backlog)
    return listener


def serve(listener, life_r, deadline, reset_accepted):
    """The server child: one epoll over the listener, every connection and the parent's pipe."""
    listener.setblocking(False)
    ep = select.epoll()
    ep.register(listener.fileno(), select.EPOLLIN)
    ep.register(life_r, select.EPOLLIN | select.EPOLLHUP)
    conns = {}
    while time.monotonic() < deadline:
        for fd, _ in ep.poll(0.5):
            if fd == life_r:
                os._exit(0)  # the parent is gone
            if fd == listener.fileno():
                while True:
                    try:
                        conn, _ = listener.accept()
                    except OSError:
                        break
                    if reset_accepted:
                        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
                    conn.setblocking(False)
                    conns[conn.fileno()] = conn
                    ep.register(conn.fileno(), select.EPOLLIN | select.EPOLLRDHUP)
                continue
            conn = conns.get(fd)
            if conn is None:
                continue
            try:
                data = conn.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if data.endswith(b"\n"):
                try:
                    conn.send(b"ok\n")
                except OSError:
                    pass
                continue
            if data and b"p" not in data:
                continue
            # End of stream, an error, or "p": this side closes.
            ep.unregister(fd)
            del conns[fd]
            conn.close()
    os._exit(3)


def start_server(o, backlog, server_name=None, reset_accepted=False):
    """Forks the server child; returns its PID and a stop() that ends both processes."""
    deadline = time.monotonic() + o["lifetime"]
    listener = listen(o["port"], backlog)
    life_r, life_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(life_w)
        signal.alarm(int(o["lifetime"]) + 5)
        if server_name:
            set_name(server_name)
        try:
            ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
            serve(listener, life_r, deadline, reset_accepted)
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
    signal.alarm(int(o["lifetime"]) + 2)
    return pid, deadline, stop


def stdin_lines(timeout):
    """Complete lines waiting on stdin within timeout seconds; None at end of input."""
    r, _, _ = select.select([sys.stdin.fileno()], [], [], max(0.0, timeout))
    if not r:
        return []
    chunk = os.read(sys.stdin.fileno(), 4096)
    if not chunk:
        return None
    stdin_lines.buf += chunk
    *lines, stdin_lines.buf = stdin_lines.buf.split(b"\n")
    return [line.decode("ascii", "replace").split() for line in lines]


stdin_lines.buf = b""


# ------------------------------------------------------------------------------------------ hold

def fd_budget():
    """Raise the soft descriptor limit to the hard one; return the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def hold_connections(n, port, until):
    """Open one listener and n connections to it; return every socket."""
    ls = listen(port, 4096)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
    ls.setblocking(False)
    listen_poll = select.poll()
    listen_poll.register(ls.fileno(), select.POLLIN)
    clients, accepted, pending = [], [], {}

    def drain_accepts(want):
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

    def finish_connects():
        # poll(), not select(): descriptors go far beyond FD_SETSIZE.
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
        c.bind(("127.0.0.%d" % (2 + (i % 64)), 0))
        c.setblocking(False)
        err = c.connect_ex((HOST, port))
        if err == errno.EINPROGRESS:
            pending[c.fileno()] = c
        elif err != 0:
            fail("connect #%d failed: %s" % (i, os.strerror(err)))
        clients.append(c)
        if len(clients) % 512 == 0:  # connects in flight before draining accepts: below somaxconn
            drain_accepts(len(clients))
            finish_connects()
    drain_accepts(n)
    finish_connects()
    return [ls] + clients + accepted


def wait_for_eof(fd, deadline):
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


def hold(argv):
    o = parse_flags(argv, {"connections": None, "per-worker": 0, "base-port": 20000, "lifetime": 600.0}, ["connections"])
    n, per_worker, base_port = int(o["connections"]), o["per-worker"], o["base-port"]
    if n < 1:
        fail("--connections must be at least 1")
    deadline = time.monotonic() + o["lifetime"]
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

    def stop(code):
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        os._exit(code)

    for sig in stop_on:
        signal.signal(sig, lambda *a: stop(0 if a[0] != signal.SIGALRM else 3))
    signal.alarm(int(o["lifetime"]) + 2)  # hard stop even if something below hangs

    left = n
    for w in range(workers):
        count = min(per_worker, left)
        left -= count
        pid = os.fork()
        if pid == 0:
            for sig in stop_on:
                signal.signal(sig, signal.SIG_DFL)
            signal.alarm(int(o["lifetime"]) + 2)
            os.close(ready_r)
            os.close(life_w)
            try:
                socks = hold_connections(count, base_port + w, min(deadline, time.monotonic() + 300))
                os.write(ready_w, b"%d %d\n" % (w, len(socks)))
                os.close(ready_w)
                # The parent keeps the write end of the life pipe; EOF means it is gone.
                wait_for_eof(life_r, deadline)
            except BaseException as e:  # report and leave; the parent sees the short count
                fail("worker %d: %r" % (w, e))
            os._exit(0)
        pids.append(pid)
    os.close(ready_w)
    os.close(life_r)

    # One line per worker; EOF early means a worker died.
    buf, sockets, seen = b"", 0, 0
    p = select.poll()
    p.register(ready_r, select.POLLIN | select.POLLHUP)
    while seen < workers:
        if time.monotonic() > deadline:
            fail("lifetime over during setup", 3)
        if not p.poll(1000):
            continue
        chunk = os.read(ready_r, 4096)
        if not chunk:
            sys.stderr.write("loopback-traffic hold: only %d of %d workers became ready\n" % (seen, workers))
            stop(2)
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            sockets += int(line.split()[1])
            seen += 1
    say("ready %d %d %d" % (n, sockets, workers))
    wait_for_eof(sys.stdin.fileno(), deadline)
    stop(0)


# ----------------------------------------------------------------------------------------- churn

def churn_connection(i, port, sources, reset):
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if reset:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
        c.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        c.bind(("127.0.0.%d" % (2 + i % sources), 0))
        c.settimeout(2.0)
        c.connect((HOST, port))
        c.sendall(b"hello from the sockwarden daemon benchmark\n")
        got = b""
        while b"\n" not in got:
            chunk = c.recv(64)
            if not chunk:
                raise OSError("server closed before answering")
            got += chunk
    finally:
        c.close()


def churn(argv):
    o = parse_flags(argv, {"port": 18080, "close": "fin", "sources": 64, "lifetime": 600.0})
    if o["close"] not in ("fin", "rst"):
        fail("--close must be fin or rst")
    sources = max(1, min(o["sources"], 250))
    pid, deadline, stop = start_server(o, 4096)
    say("ready %d %d" % (o["port"], pid))
    ok = failed = late = i = 0
    first_error = "-"
    rate = next_at = 0.0
    while time.monotonic() < deadline:
        lines = stdin_lines(1.0 if rate <= 0 else next_at - time.monotonic())
        if lines is None:
            stop()
        for words in lines:
            if words[:1] == ["start"] and len(words) == 2:
                rate, next_at = max(0.0, float(words[1])), time.monotonic()
            elif words[:1] == ["mark"]:
                say("mark %d %d %d" % (ok, failed, late))
            elif words[:1] == ["stop"]:
                rate = 0.0
                say("stopped %d %d %d %s" % (ok, failed, late, first_error))
        now = time.monotonic()
        if lines or rate <= 0 or now < next_at:
            continue
        if now - next_at > 1.0:
            missed = int((now - next_at) * rate)
            late += missed
            next_at += missed / rate
        next_at += 1.0 / rate
        try:
            churn_connection(i, o["port"], sources, o["close"] == "rst")
            ok += 1
        except OSError as e:
            failed += 1
            if first_error == "-":
                first_error = ("%s" % (e,)).replace(" ", "_")[:120] or "error"
        i += 1
    stop()


# ---------------------------------------------------------------------------------------- beacon

def beacon_burst(port, n, seed):
    rng = random.Random(seed)
    modes = ("fin", "rst", "peer")
    conns = []
    t0 = time.monotonic()
    for i in range(n):
        mode = modes[i % len(modes)]
        hold_ms = rng.uniform(1.0, 5.0)
        opened = time.monotonic()
        s = socket.create_connection((HOST, port), source_address=(HOST, 0))
        local = s.getsockname()[1]
        s.sendall(b"n")
        time.sleep(max(0.0, hold_ms / 1000 - (time.monotonic() - opened)))
        if mode == "peer":
            s.sendall(b"p")
            s.settimeout(2.0)
            try:
                while s.recv(64):
                    pass
            except OSError:
                pass
        elif mode == "rst":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
        s.close()
        conns.append({"port": local, "mode": mode, "holdMs": round((time.monotonic() - opened) * 1000, 3)})
        time.sleep(rng.uniform(0.0, 0.005))
    return {"pid": os.getpid(), "ms": round((time.monotonic() - t0) * 1000, 1), "conns": conns}


def beacon(argv):
    o = parse_flags(argv, {"port": None, "name": "sw-beacon", "lifetime": 600.0}, ["port"])
    o["port"] = int(o["port"])
    set_name(o["name"])
    pid, _, stop = start_server(o, 1024, server_name=o["name"] + "-srv")
    say("ready %d %d" % (o["port"], pid))
    held = []
    try:
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            if words[0] == "quit":
                break
            if words[0] == "hold":
                s = socket.create_connection((HOST, o["port"]), source_address=(HOST, 0))
                s.sendall(b"h")
                held.append(s)
                say("held %d" % s.getsockname()[1])
            elif words[0] == "burst" and len(words) == 3:
                say(json.dumps(beacon_burst(o["port"], int(words[1]), int(words[2]))))
            else:
                fail("unknown command: %r" % line)
    finally:
        for s in held:
            # A reset leaves no TIME_WAIT behind for the next phase to wait out.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
            s.close()
    stop()


# ---------------------------------------------------------------------------------------- victim

def victim_sample(i, port, timeout, gap_ms):
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        c.connect((HOST, port))
        t0 = time.monotonic_ns()
        w0 = time.time_ns()
        lport = c.getsockname()[1]
        c.settimeout(timeout)
        try:
            result = "eof" if c.recv(1) == b"" else "data"
        except socket.timeout:
            result = "timeout"
        except OSError as e:
            result = errno.errorcode.get(e.errno, str(e.errno))
        t1 = time.monotonic_ns()
        if result == "timeout":
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
        return {"i": i, "port": lport, "connectWallMs": w0 / 1e6, "latencyMs": (t1 - t0) / 1e6,
                "result": result, "gapMs": round(gap_ms, 3)}
    except OSError as e:
        return {"i": i, "port": None, "connectWallMs": time.time_ns() / 1e6, "latencyMs": None,
                "result": "connect-failed " + errno.errorcode.get(e.errno or 0, str(e)), "gapMs": round(gap_ms, 3)}
    finally:
        c.close()


def victim(argv):
    o = parse_flags(argv, {"port": 25, "samples": 200, "gap-max": 1.0, "timeout": 5.0, "seed": 1,
                           "name": "sw-victim", "lifetime": 600.0})
    rng = random.Random(o["seed"])
    pid, deadline, stop = start_server(o, 64, server_name=o["name"] + "-sink", reset_accepted=True)
    set_name(o["name"])
    say("ready %d %d" % (o["port"], pid))
    go = None
    while go is None and time.monotonic() < deadline:
        lines = stdin_lines(1.0)
        if lines is None:
            stop()
        go = next((w == ["go"] for w in lines), None)
    if not go:
        stop()
    done = 0
    for i in range(o["samples"]):
        gap = rng.uniform(0.0, o["gap-max"])
        lines = stdin_lines(gap)
        if lines is None or any(w[:1] == ["quit"] for w in lines) or time.monotonic() + o["timeout"] > deadline:
            break
        say(json.dumps(victim_sample(i, o["port"], o["timeout"], gap * 1000)))
        done += 1
    say("done %d" % done)
    stop()


MODES = {"hold": hold, "churn": churn, "beacon": beacon, "victim": victim}

if __name__ == "__main__":
    if MODE not in MODES:
        fail("usage: loopback-traffic.py %s [--flag VALUE ...]" % "|".join(MODES))
    MODES[MODE](sys.argv[2:])
