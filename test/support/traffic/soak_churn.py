"""The soak's short connections (see traffic.py, mode soak): a steady stream to the server's
port 8025, many in flight at once, never blocking, each followed to its outcome."""

import errno
import json
import select
import signal
import socket
import time

from common import LINGER0, Schedule, now_ms, source_socket

REQUEST = b"soak request\n"
CHURN_PORT = 8025
CHURN_SOURCES = 32


class Results:
    """One generator's result file, a JSON object a line."""

    def __init__(self, path: str):
        self.f = open(path, "w", buffering=1 << 16)

    def write(self, obj: dict) -> None:
        self.f.write(json.dumps(obj, separators=(",", ":")) + "\n")

    def close(self) -> None:
        self.f.flush()
        self.f.close()


def stop_requested_flag():
    """SIGUSR1 asks a generator to stop starting connections and finish the ones it has."""
    state = {"stop": False}

    def on_usr1(*_):
        state["stop"] = True

    signal.signal(signal.SIGUSR1, on_usr1)
    return state


def churn(cfg: dict, results: Results) -> None:
    """Short connections at churnRate. On "stop" nothing new starts and every connection in
    flight is followed to its outcome (answered, or failed with its error); only those still
    unanswered after churnTimeout count as "stopped", apart from the failures. A connection that
    gets no answer within churnTimeout while the traffic runs is a failure ("timeout"); the
    slowest answer is reported so that a loaded host shows as slow, not as broken."""
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
            s = None
            try:
                s = source_socket("127.0.0.%d" % (32 + i % CHURN_SOURCES), reset)
                s.setblocking(False)
                rc = s.connect_ex(("127.0.0.1", CHURN_PORT))
            except OSError as e:
                rc = e.errno or -1
            i += 1
            started += 1
            if rc not in (0, errno.EINPROGRESS):
                if s is not None:
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
