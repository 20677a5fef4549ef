"""soak: the soak and fault tests' mixed traffic, every connection's fate written down (see
traffic.py for the usage)."""

import errno
import os
import select
import signal
import socket
import sys
import time

from common import LINGER0, Family, Schedule, listen, now_ms, parse_json, set_name, source_socket
from soak_churn import CHURN_PORT, REQUEST, Results, churn, stop_requested_flag

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


def held(name: str, kinds: list, cfg: dict, results: Results) -> None:
    """Held connections: each class at its rate, each connection watched until its outcome."""
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


def forker(cfg: dict, results: Results) -> None:
    """Short-lived processes: each holds sockets for a moment and exits, the kernel closing them."""
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
                    s = source_socket("127.0.0.%d" % (100 + i % 16))
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


def soak(argv) -> None:
    cfg = parse_json(argv)
    lifetime = max(5, min(int(cfg.get("lifetime", 3700)), 4 * 3600))
    family = Family(lifetime, grace=0, code=1)
    out = cfg.get("out", "/tmp/soak-traffic")
    enabled = set(cfg.get("classes") or [k[0] for k in HELD] + (["public-443"] if cfg.get("public") else []))

    listeners = [listen("127.0.0.1", 25, 4096), listen("::1", 25, 4096, v6only=True),
                 listen("127.0.0.1", 2525, 4096), listen("127.0.0.1", CHURN_PORT, 4096)]
    if cfg.get("public"):
        listeners.append(listen(cfg["public"], 443, 4096))
    server_pid = family.serve(listeners, "soak-server")

    def generator(name, run, *args):
        def with_results():
            res = Results("%s.%s.ndjson" % (out, name))
            try:
                run(*args, res)
            finally:
                res.close()
        return family.fork(with_results, name)

    generators = []
    if float(cfg.get("churnRate", 0)) > 0:
        generators.append(generator("soak-churn", churn, cfg))
    if float(cfg.get("forkRate", 0)) > 0:
        generators.append(generator("soak-forker", forker, cfg))
    by_name = {}
    for k in HELD:
        if k[0] in enabled:
            by_name.setdefault(k[1], []).append(k)
    if cfg.get("public") and "public-443" in enabled:
        by_name.setdefault("sw-fetch", []).append(("public-443", "sw-fetch", "public", "tcp", 4, "127.0.0.1", cfg["public"], 443))
    for name, kinds in by_name.items():
        generators.append(generator(name, held, name, kinds, cfg))

    print("ready %d" % server_pid, flush=True)
    buf = b""
    while True:
        chunk = os.read(sys.stdin.fileno(), 4096)
        if not chunk:
            family.stop(1)
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
