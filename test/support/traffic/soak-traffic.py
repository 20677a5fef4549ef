#!/usr/bin/python3
"""Loopback traffic for the daemon soak and fault tests: a steady stream of new connections,
some of which smtp-guard must close and some look-alikes it must leave alone, with every
connection's fate written down so that missed and wrong closes can be counted exactly.

Usage: soak-traffic.py CONFIG_JSON

CONFIG_JSON (a JSON object; every key optional):
  out         path prefix of the result files (default /tmp/soak-traffic); each generator
              process writes OUT.NAME.ndjson
  churnRate   short connections a second to 127.0.0.1:8025 (connect, one line each way, close)
  churnClose  "fin" (the client closes first: 60 s of TIME_WAIT each, as on a real server) or
              "rst" (SO_LINGER 0: no TIME_WAIT)
  churnTimeout  seconds a short connection may wait for its answer before it fails (default 30);
              after "stop", how long connections in flight are followed to their outcome
  classRate   connections a second of each held class below (default 2)
  hold        seconds a look-alike is held before it is checked and closed (default 3)
  closeDeadline  seconds a connection that must be closed waits for it (default 10)
  public      an address on lo of this namespace that counts as public (e.g. 198.51.100.7), or
              null; "sw-fetch" then connects to it on port 443 at classRate and holds each
  forkRate    short-lived processes a second (default 0): each connects to 127.0.0.1:8025 and
              exits 0 to 40 ms later without closing anything (every tenth also listens on a
              port of its own for 0.3 to 0.9 s first), so that processes keep vanishing while
              /proc is being read
  lifetime    hard bound in seconds for every process (default 3700)
  classes     which held classes run (default all of them)

Held classes (process name -> target, and what smtp-guard must do):
  must-close  curl    127.0.0.10 -> 127.0.0.1:25       ESTABLISHED, not a mail server
  must-close  curl    [::1] -> [::1]:25                 the same over IPv6
  must-close  eximx   127.0.0.11 -> 127.0.0.1:25       a name like a mail server's, but not one
  keep        exim4   127.0.0.12 -> 127.0.0.1:25       a mail server
  keep        postfix 127.0.0.13 -> 127.0.0.1:25       a mail server
  keep        curl    127.0.0.14 -> 127.0.0.1:2525     another port
  keep        curl    udp 127.0.0.15 -> 127.0.0.1:25   UDP, not TCP
  keep        (the server's own accepted side of every port-25 connection: local port 25)
  public      sw-fetch 127.0.0.1 -> PUBLIC:443        (outbound-allowlist alerts on each)

One JSON line per held connection: {"cls", "kind", "name", "proto", "family", "laddr",
"lport", "raddr", "rport", "t0" (wall ms when connect returned), "t1" (wall ms of the outcome),
"result" ("aborted", "reset", "eof", "alive", "timeout", "connect-failed ERRNO"), "ms"} (for
"connect-failed": "t0" when connect was called, "lport" the port bind took, "ms" its duration), and
every 5 s {"cls": "progress", "t", "started", "ok", "failed", "late"} per generator; a final
{"cls": "summary", ...} when the generator ends (for the short connections: "ok", "failed",
"stopped" (still unanswered churnTimeout after "stop"), "errors" by reason, "firstError",
"slowestMs" and "slow" (answered after more than a second)).

Protocol on stdin/stdout: prints "ready" once every listener is up and the generators run;
"stop" on stdin stops new connections, lets every one in flight (held and short) reach its
outcome, and prints "finished" when every generator has written its results; EOF on stdin stops
everything at once.
Every process ends by itself after `lifetime` seconds.
"""

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

LINGER0 = struct.pack("ii", 1, 0)
IP_BIND_ADDRESS_NO_PORT = 24
REQUEST = b"soak request\n"
CHURN_PORT = 8025
CHURN_SOURCES = 32

HELD = [
    # (kind, process name, cls, proto, family, source, target host, target port)
    ("curl-25", "curl", "must-close", "tcp", 4, "127.0.0.10", "127.0.0.1", 25),
    ("curl-25-v6", "curl", "must-close", "tcp", 6, "::1", "::1", 25),
    ("eximx-25", "eximx", "must-close", "tcp", 4, "127.0.0.11", "127.0.0.1", 25),
    ("exim4-25", "exim4", "keep", "tcp", 4, "127.0.0.12", "127.0.0.1", 25),
    ("postfix-25", "postfix", "keep", "tcp", 4, "127.0.0.13", "127.0.0.1", 25),
    ("curl-2525", "curl", "keep", "tcp", 4, "127.0.0.14", "127.0.0.1", 2525),
    ("curl-udp-25", "curl", "keep", "udp", 4, "127.0.0.15", "127.0.0.1", 25),
]


def now_ms() -> float:
    return time.time() * 1000.0


def set_name(name: str) -> None:
    try:
        ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
    except Exception:
        pass


def die_with_parent() -> None:
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Results:
    def __init__(self, path: str):
        self.f = open(path, "w", buffering=1 << 16)

    def write(self, obj: dict) -> None:
        self.f.write(json.dumps(obj, separators=(",", ":")) + "\n")

    def close(self) -> None:
        self.f.flush()
        self.f.close()


class Schedule:
    """A fixed-rate schedule; when it falls more than a second behind, missed slots are dropped
    and counted as late."""

    def __init__(self, rate: float):
        self.rate = rate
        self.next_at = time.monotonic()
        self.late = 0

    def due(self, now: float) -> int:
        if self.rate <= 0 or now < self.next_at:
            return 0
        if now - self.next_at > 1.0:
            missed = int((now - self.next_at) * self.rate)
            self.late += missed
            self.next_at += missed / self.rate
        n = 0
        while self.next_at <= now and n < 1000:
            self.next_at += 1.0 / self.rate
            n += 1
        return n

    def wait(self, now: float) -> float:
        return 1.0 if self.rate <= 0 else max(0.0, self.next_at - now)


def stop_requested_flag():
    state = {"stop": False}

    def on_usr1(*_):
        state["stop"] = True

    signal.signal(signal.SIGUSR1, on_usr1)
    return state


# ---------------------------------------------------------------------------------------------
# The server: every listener, in one process.

def server(cfg: dict, ready_w: int) -> None:
    set_name("soak-server")
    ep = select.epoll()
    listeners = {}

    def listen(family, host, port):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((host, port))
        s.listen(4096)
        s.setblocking(False)
        listeners[s.fileno()] = (s, port)
        ep.register(s.fileno(), select.EPOLLIN)

    listen(socket.AF_INET, "127.0.0.1", 25)
    listen(socket.AF_INET6, "::1", 25)
    listen(socket.AF_INET, "127.0.0.1", 2525)
    listen(socket.AF_INET, "127.0.0.1", CHURN_PORT)
    if cfg.get("public"):
        listen(socket.AF_INET, cfg["public"], 443)
    os.write(ready_w, b"r")
    os.close(ready_w)
    conns = {}
    while True:
        for fd, _ in ep.poll(1.0):
            entry = listeners.get(fd)
            if entry is not None:
                lsock, port = entry
                for _ in range(256):
                    try:
                        c, _ = lsock.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        break
                    c.setblocking(False)
                    conns[c.fileno()] = [c, port, b""]
                    ep.register(c.fileno(), select.EPOLLIN | select.EPOLLRDHUP)
                continue
            held = conns.get(fd)
            if held is None:
                continue
            c, port, buf = held
            try:
                data = c.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data:
                if port == CHURN_PORT:
                    held[2] = buf + data
                    if b"\n" in held[2]:
                        held[2] = b""
                        try:
                            c.send(b"ok\n")
                        except OSError:
                            pass
                continue
            try:
                ep.unregister(fd)
            except OSError:
                pass
            del conns[fd]
            c.close()


# ---------------------------------------------------------------------------------------------
# Churn: short connections at a steady rate, many in flight, never blocking.

def churn(cfg: dict, results: Results) -> None:
    """Short connections at churnRate. On "stop" nothing new starts and every connection in
    flight is followed to its outcome (answered, or failed with its error); only those still
    unanswered after churnTimeout count as "stopped", apart from the failures. A connection that
    gets no answer within churnTimeout while the traffic runs is a failure ("timeout"); the
    slowest answer is reported so that a loaded host shows as slow, not as broken."""
    set_name("soak-churn")
    flags = stop_requested_flag()
    rate = float(cfg.get("churnRate", 0))
    reset = cfg.get("churnClose", "fin") == "rst"
    timeout_s = float(cfg.get("churnTimeout", 30))
    sched = Schedule(rate)
    ep = select.epoll()
    flight = {}  # fd -> [sock, phase, started, buf, number]
    started = ok = stopped = 0
    errors = {}  # reason -> count; every failure is in one
    first_error = None
    slowest_ms = 0.0
    slow = 0  # answered, but after more than a second
    i = 0
    last_progress = time.monotonic()
    stop_at = None

    def fail(why, detail):
        nonlocal first_error
        errors[why] = errors.get(why, 0) + 1
        if first_error is None:
            first_error = "%s (%s%s)" % (why, detail, ", after stop" if stop_at is not None else "")

    def finish(fd, good, why=None):
        nonlocal ok, slowest_ms, slow
        s, _, t_start, _, number = flight.pop(fd)
        try:
            ep.unregister(fd)
        except OSError:
            pass
        if not good and reset is False:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
        s.close()
        if good:
            ok += 1
            took = (time.monotonic() - t_start) * 1000.0
            slowest_ms = max(slowest_ms, took)
            if took > 1000.0:
                slow += 1
        else:
            fail(why, "connection %d, %.0f ms after it started" % (number, (time.monotonic() - t_start) * 1000.0))

    while True:
        now = time.monotonic()
        if flags["stop"] and stop_at is None:
            stop_at = now
        if stop_at is not None and (not flight or now - stop_at > timeout_s):
            break
        for _ in range(sched.due(now) if stop_at is None else 0):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                if reset:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
                s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                s.bind(("127.0.0.%d" % (32 + i % CHURN_SOURCES), 0))
                s.setblocking(False)
                rc = s.connect_ex(("127.0.0.1", CHURN_PORT))
            except OSError as e:
                rc = e.errno or -1
            i += 1
            started += 1
            if rc not in (0, errno.EINPROGRESS):
                s.close()
                fail("connect " + errno.errorcode.get(rc, str(rc)), "connection %d" % started)
                continue
            flight[s.fileno()] = [s, "connect", now, b"", started]
            ep.register(s.fileno(), select.EPOLLOUT | select.EPOLLIN | select.EPOLLRDHUP)
        wait = min(sched.wait(time.monotonic()), 0.05) if stop_at is None else 0.05
        for fd, ev in ep.poll(wait):
            entry = flight.get(fd)
            if entry is None:
                continue
            s, phase = entry[0], entry[1]
            if phase == "connect":
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    finish(fd, False, "connect " + errno.errorcode.get(err, str(err)))
                    continue
                if not ev & select.EPOLLOUT:
                    continue
                try:
                    s.send(REQUEST)
                except OSError as e:
                    finish(fd, False, "send " + errno.errorcode.get(e.errno, str(e)))
                    continue
                entry[1] = "answer"
                ep.modify(fd, select.EPOLLIN | select.EPOLLRDHUP)
                continue
            try:
                data = s.recv(64)
            except BlockingIOError:
                continue
            except OSError as e:
                finish(fd, False, "recv " + errno.errorcode.get(e.errno, str(e)))
                continue
            if not data:
                finish(fd, False, "eof before the answer")
                continue
            entry[3] += data
            if b"\n" in entry[3]:
                finish(fd, True)
        now = time.monotonic()
        if stop_at is None:
            for fd in [fd for fd, e in flight.items() if now - e[2] > timeout_s]:
                finish(fd, False, "timeout (%s, no answer in %g s)" % (flight[fd][1], timeout_s))
        if now - last_progress >= 5.0:
            last_progress = now
            results.write({"cls": "progress", "gen": "churn", "t": now_ms(), "started": started, "ok": ok,
                           "failed": sum(errors.values()), "inFlight": len(flight), "late": sched.late})
    # Still unanswered churnTimeout after stop: told apart from failures.
    for fd in list(flight):
        s = flight.pop(fd)[0]
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
        s.close()
        stopped += 1
    results.write({"cls": "summary", "gen": "churn", "t": now_ms(), "started": started, "ok": ok,
                   "failed": sum(errors.values()), "stopped": stopped, "errors": errors, "firstError": first_error, "slowestMs": round(slowest_ms, 1),
                   "slow": slow, "late": sched.late})


# ---------------------------------------------------------------------------------------------
# Held connections: each class at its rate, each connection watched until its outcome.

def held(name: str, kinds: list, cfg: dict, results: Results) -> None:
    set_name(name)
    flags = stop_requested_flag()
    rate = float(cfg.get("classRate", 2))
    hold = float(cfg.get("hold", 3))
    deadline = float(cfg.get("closeDeadline", 10))
    scheds = [(k, Schedule(rate)) for k in kinds]
    ep = select.epoll()
    open_ = {}  # fd -> (sock, kind tuple, t0 wall, t0 mono, laddr, lport)
    started = 0
    counts = {}

    def record(fd, result):
        s, k, t0, m0, laddr, lport = open_.pop(fd)
        try:
            ep.unregister(fd)
        except OSError:
            pass
        kind, _, cls, proto, family, _, host, port = k
        results.write({
            "cls": cls, "kind": kind, "name": name, "proto": proto, "family": family,
            "laddr": laddr, "lport": lport, "raddr": host, "rport": port,
            "t0": t0, "t1": now_ms(), "result": result, "ms": round((time.monotonic() - m0) * 1000, 1),
        })
        counts[result] = counts.get(result, 0) + 1
        if result in ("alive", "timeout"):
            if cls == "must-close":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
        s.close()

    def outcome_of(s, proto):
        """'alive' while nothing happened, else what did."""
        try:
            data = s.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK)
        except BlockingIOError:
            return "alive"
        except OSError as e:
            if e.errno == errno.ECONNABORTED:
                return "aborted"
            if e.errno == errno.ECONNRESET:
                return "reset"
            return errno.errorcode.get(e.errno, str(e.errno))
        if proto == "udp":
            return "alive"
        return "eof" if data == b"" else "alive"

    last_progress = time.monotonic()
    while not flags["stop"] or open_:
        now = time.monotonic()
        if not flags["stop"]:
            for k, sched in scheds:
                for _ in range(sched.due(now)):
                    kind, _, cls, proto, family, src, host, port = k
                    af = socket.AF_INET6 if family == 6 else socket.AF_INET
                    s = socket.socket(af, socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM)
                    started += 1
                    # The port is taken at bind, so a connection that fails in connect() (the
                    # daemon may close it that early) still has an address to match audit lines.
                    bound_port = None
                    t0, m0 = now_ms(), time.monotonic()
                    try:
                        s.bind((src, 0))
                        bound_port = s.getsockname()[1]
                        s.settimeout(5.0)
                        s.connect((host, port))
                        s.setblocking(False)
                    except OSError as e:
                        s.close()
                        results.write({"cls": cls, "kind": kind, "name": name, "proto": proto, "family": family, "laddr": src, "lport": bound_port,
                                       "raddr": host, "rport": port, "t0": t0, "t1": now_ms(),
                                       "result": "connect-failed " + errno.errorcode.get(e.errno or 0, str(e)),
                                       "ms": round((time.monotonic() - m0) * 1000, 1)})
                        counts["connect-failed"] = counts.get("connect-failed", 0) + 1
                        continue
                    laddr, lport = s.getsockname()[:2]
                    open_[s.fileno()] = (s, k, now_ms(), time.monotonic(), laddr, lport)
                    if proto == "tcp":
                        ep.register(s.fileno(), select.EPOLLIN | select.EPOLLRDHUP)
        waits = [sched.wait(time.monotonic()) for _, sched in scheds] if not flags["stop"] else []
        timeout = min(waits + [0.05])
        for fd, _ in ep.poll(timeout):
            entry = open_.get(fd)
            if entry is None:
                continue
            result = outcome_of(entry[0], entry[1][3])
            if result != "alive":
                record(fd, result)
        now = time.monotonic()
        for fd in list(open_):
            s, k, _, m0, _, _ = open_[fd]
            cls = k[2]
            if cls == "must-close":
                if now - m0 > deadline:
                    record(fd, "timeout")
            elif now - m0 > hold:
                record(fd, outcome_of(s, k[3]))
        if now - last_progress >= 5.0:
            last_progress = now
            results.write({"cls": "progress", "gen": name, "t": now_ms(), "started": started, "open": len(open_), "results": counts})
    results.write({"cls": "summary", "gen": name, "t": now_ms(), "started": started, "results": counts,
                   "late": sum(s.late for _, s in scheds)})


# ---------------------------------------------------------------------------------------------
# Short-lived processes: each holds sockets for a moment and exits, the kernel closing them.

def forker(cfg: dict, results: Results) -> None:
    set_name("soak-forker")
    flags = stop_requested_flag()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    sched = Schedule(float(cfg.get("forkRate", 0)))
    forked = failed = 0
    i = 0
    last_progress = time.monotonic()
    while not flags["stop"]:
        now = time.monotonic()
        for _ in range(sched.due(now)):
            i += 1
            try:
                pid = os.fork()
            except OSError:
                failed += 1
                continue
            if pid == 0:
                try:
                    set_name("soak-child")
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                    s.bind(("127.0.0.%d" % (100 + i % 16), 0))
                    s.settimeout(1.0)
                    s.connect(("127.0.0.1", CHURN_PORT))
                    s.send(REQUEST)
                    if i % 10 == 0:
                        # A listener long enough for a refresh to see it (new-listener tells it).
                        l = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                        l.bind(("127.0.0.1", 0))
                        l.listen(1)
                        time.sleep(0.3 + (i * 7919 % 601) / 1000.0)
                    time.sleep((i * 7919 % 41) / 1000.0)
                finally:
                    os._exit(0)
            forked += 1
        time.sleep(min(sched.wait(time.monotonic()), 0.05))
        if time.monotonic() - last_progress >= 5.0:
            last_progress = time.monotonic()
            results.write({"cls": "progress", "gen": "forker", "t": now_ms(), "forked": forked, "failed": failed, "late": sched.late})
    results.write({"cls": "summary", "gen": "forker", "t": now_ms(), "forked": forked, "failed": failed, "late": sched.late})


# ---------------------------------------------------------------------------------------------

def main() -> None:
    cfg = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    lifetime = max(5, min(int(cfg.get("lifetime", 3700)), 4 * 3600))
    signal.alarm(lifetime)
    out = cfg.get("out", "/tmp/soak-traffic")
    enabled = set(cfg.get("classes") or [k[0] for k in HELD] + (["public-443"] if cfg.get("public") else []))

    kids = []

    def spawn(fn, *args):
        pid = os.fork()
        if pid == 0:
            try:
                die_with_parent()
                signal.alarm(lifetime)
                fn(*args)
            except BaseException as e:  # say why, then end this process only
                sys.stderr.write("soak-traffic[%d]: %r\n" % (os.getpid(), e))
                os._exit(3)
            os._exit(0)
        kids.append(pid)
        return pid

    ready_r, ready_w = os.pipe()
    server_pid = spawn(server, cfg, ready_w)
    os.close(ready_w)
    r, _, _ = select.select([ready_r], [], [], 10)
    if not r or os.read(ready_r, 1) != b"r":
        sys.stderr.write("soak-traffic: the server did not start\n")
        os.kill(server_pid, signal.SIGKILL)
        os._exit(2)
    os.close(ready_r)

    generators = []
    if float(cfg.get("churnRate", 0)) > 0:
        def run_churn():
            res = Results("%s.soak-churn.ndjson" % out)
            try:
                churn(cfg, res)
            finally:
                res.close()
        generators.append(spawn(run_churn))
    if float(cfg.get("forkRate", 0)) > 0:
        def run_forker():
            res = Results("%s.soak-forker.ndjson" % out)
            try:
                forker(cfg, res)
            finally:
                res.close()
        generators.append(spawn(run_forker))
    by_name = {}
    for k in HELD:
        if k[0] in enabled:
            by_name.setdefault(k[1], []).append(k)
    if cfg.get("public") and "public-443" in enabled:
        by_name.setdefault("sw-fetch", []).append(("public-443", "sw-fetch", "public", "tcp", 4, "127.0.0.1", cfg["public"], 443))
    for name, kinds in by_name.items():
        def run_held(name=name, kinds=kinds):
            res = Results("%s.%s.ndjson" % (out, name))
            try:
                held(name, kinds, cfg, res)
            finally:
                res.close()
        generators.append(spawn(run_held))

    def kill_all(*_):
        for pid in kids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        os._exit(1)

    signal.signal(signal.SIGTERM, kill_all)
    signal.signal(signal.SIGALRM, kill_all)
    signal.signal(signal.SIGINT, kill_all)
    print("ready %d" % server_pid, flush=True)

    buf = b""
    while True:
        chunk = os.read(sys.stdin.fileno(), 4096)
        if not chunk:
            kill_all()
        buf += chunk
        if b"stop" in buf:
            break
    for pid in generators:
        try:
            os.kill(pid, signal.SIGUSR1)
        except ProcessLookupError:
            pass
    for pid in generators:
        os.waitpid(pid, 0)
    os.kill(server_pid, signal.SIGKILL)
    os.waitpid(server_pid, 0)
    print("finished", flush=True)


if __name__ == "__main__":
    main()
