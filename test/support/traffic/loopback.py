"""hold, churn, beacon and victim: the benchmarks' loopback traffic on 127.0.0.1 (see traffic.py
for the usage)."""

import errno
import json
import os
import random
import resource
import select
import socket
import sys
import time

from common import (LINGER0, Family, Schedule, close_as, errname, fail, listen, parse_flags, say, set_name,
                    source_socket)

HOST = "127.0.0.1"


def stdin_lines(timeout):
    """Complete lines waiting on stdin within timeout seconds, split in words; None at end of input."""
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


def start_server(o, backlog, server_name=None, reset_accepted=False):
    """Listens on 127.0.0.1:--port and forks the server child; returns it with its PID."""
    family = Family(o["lifetime"])
    pid = family.serve([listen(HOST, o["port"], backlog)], server_name, reset_accepted)
    return family, pid


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
    ls = listen(HOST, port, 4096)
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
        c = source_socket("127.0.0.%d" % (2 + (i % 64)), reset=True)
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
    family = Family(o["lifetime"], alarm_code=3)
    left = n
    for w in range(workers):
        count = min(per_worker, left)
        left -= count

        def work(w=w, count=count):
            os.close(ready_r)
            socks = hold_connections(count, base_port + w, min(deadline, time.monotonic() + 300))
            os.write(ready_w, b"%d %d\n" % (w, len(socks)))
            os.close(ready_w)
            wait_for_eof(family.life_r, deadline)

        family.fork(work)
    os.close(ready_w)

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
            sys.stderr.write("traffic hold: only %d of %d workers became ready\n" % (seen, workers))
            family.stop(2)
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            sockets += int(line.split()[1])
            seen += 1
    say("ready %d %d %d" % (n, sockets, workers))
    wait_for_eof(sys.stdin.fileno(), deadline)
    family.stop(0)


# ----------------------------------------------------------------------------------------- churn

def churn_connection(i, port, sources, reset):
    c = source_socket("127.0.0.%d" % (2 + i % sources), reset)
    try:
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
    family, pid = start_server(o, 4096)
    deadline = time.monotonic() + o["lifetime"]
    say("ready %d %d" % (o["port"], pid))
    ok = failed = i = 0
    first_error = "-"
    sched = Schedule(0.0)
    while time.monotonic() < deadline:
        lines = stdin_lines(sched.wait(time.monotonic()))
        if lines is None:
            family.stop()
        for words in lines:
            if words[:1] == ["start"] and len(words) == 2:
                sched.rate, sched.next_at = max(0.0, float(words[1])), time.monotonic()
            elif words[:1] == ["mark"]:
                say("mark %d %d %d" % (ok, failed, sched.late))
            elif words[:1] == ["stop"]:
                sched.rate = 0.0
                say("stopped %d %d %d %s" % (ok, failed, sched.late, first_error))
        if lines or not sched.take(time.monotonic()):
            continue
        try:
            churn_connection(i, o["port"], sources, o["close"] == "rst")
            ok += 1
        except OSError as e:
            failed += 1
            if first_error == "-":
                first_error = ("%s" % (e,)).replace(" ", "_")[:120] or "error"
        i += 1
    family.stop()


# ---------------------------------------------------------------------------------------- beacon

def beacon_burst(port, n, seed):
    rng = random.Random(seed)
    modes = (("fin", "normal"), ("rst", "reset"), ("peer", "peer"))
    conns = []
    t0 = time.monotonic()
    for i in range(n):
        mode, how = modes[i % len(modes)]
        hold_ms = rng.uniform(1.0, 5.0)
        opened = time.monotonic()
        s = socket.create_connection((HOST, port), source_address=(HOST, 0))
        local = s.getsockname()[1]
        s.sendall(b"n")
        time.sleep(max(0.0, hold_ms / 1000 - (time.monotonic() - opened)))
        if how == "peer":
            s.sendall(b"p")
        close_as(s, how, 2.0, tolerant=True)
        conns.append({"port": local, "mode": mode, "holdMs": round((time.monotonic() - opened) * 1000, 3)})
        time.sleep(rng.uniform(0.0, 0.005))
    return {"pid": os.getpid(), "ms": round((time.monotonic() - t0) * 1000, 1), "conns": conns}


def beacon(argv):
    o = parse_flags(argv, {"port": None, "name": "sw-beacon", "lifetime": 600.0}, ["port"])
    o["port"] = int(o["port"])
    set_name(o["name"])
    family, pid = start_server(o, 1024, server_name=o["name"] + "-srv")
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
            close_as(s, "reset", 0)
    family.stop()


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
            result = errname(e.errno)
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
    family, pid = start_server(o, 64, server_name=o["name"] + "-sink", reset_accepted=True)
    deadline = time.monotonic() + o["lifetime"]
    set_name(o["name"])
    say("ready %d %d" % (o["port"], pid))
    go = None
    while go is None and time.monotonic() < deadline:
        lines = stdin_lines(1.0)
        if lines is None:
            family.stop()
        go = next((w == ["go"] for w in lines), None)
    if not go:
        family.stop()
    done = 0
    for i in range(o["samples"]):
        gap = rng.uniform(0.0, o["gap-max"])
        lines = stdin_lines(gap)
        if lines is None or any(w[:1] == ["quit"] for w in lines) or time.monotonic() + o["timeout"] > deadline:
            break
        say(json.dumps(victim_sample(i, o["port"], o["timeout"], gap * 1000)))
        done += 1
    say("done %d" % done)
    family.stop()


MODES = {"hold": hold, "churn": churn, "beacon": beacon, "victim": victim}
