#!/usr/bin/python3
"""Detect-to-close latency samples for the daemon benchmark (smtp-guard).

Usage: smtp_victim.py [--port 25] [--samples N] [--gap-max S] [--timeout S]
                      [--lifetime S] [--seed N] [--name NAME]

A forked child (named NAME-sink) listens on 127.0.0.1:PORT, accepts every
connection and holds it without sending anything until the peer goes away.
This process renames itself NAME (default sw-victim: not a mail server's name),
prints "ready PORT SINKPID" and waits for a line "go" on stdin. Then, N times:

  1. sleep a random time, uniform in [0, gap-max] (gap-max is the daemon's
     interval, so connections land at random phases of its refresh cycle);
  2. connect to the listener; the clock starts when connect() returns;
  3. block in recv() until it fails (ECONNABORTED when the daemon destroys the
     socket, ECONNRESET), returns EOF, or the timeout passes;
  4. print one JSON line: {"i", "port" (local port), "connectWallMs" (wall
     clock when connect returned, for matching the audit log), "latencyMs"
     (monotonic, connect returned -> recv failed), "result", "gapMs"}.

Then prints "done N" and exits. A line "quit" or EOF on stdin stops it between
samples; it exits in any case after --lifetime seconds (SIGALRM). A connection
that timed out is reset (SO_LINGER 0) before the next sample.

Run it inside the benchmark's network namespace; traffic stays on loopback.
"""

import ctypes
import errno
import json
import os
import random
import select
import signal
import socket
import struct
import sys
import time

LINGER0 = struct.pack("ii", 1, 0)


def fail(msg: str, code: int = 2) -> None:
    sys.stderr.write("smtp_victim[%d]: %s\n" % (os.getpid(), msg))
    sys.stderr.flush()
    os._exit(code)


def set_name(name: str) -> None:
    try:
        ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
    except Exception as e:  # the name only matters for the rule; say so and go on
        sys.stderr.write("smtp_victim: could not rename the process: %r\n" % (e,))


def parse_args(argv):
    opts = {"port": 25, "samples": 200, "gap-max": 1.0, "timeout": 5.0, "lifetime": 600.0, "seed": 1,
            "name": "sw-victim"}
    i = 1
    while i < len(argv):
        key = argv[i]
        if not key.startswith("--") or key[2:] not in opts or i + 1 >= len(argv):
            fail("usage: smtp_victim.py [--port P] [--samples N] [--gap-max S] [--timeout S] "
                 "[--lifetime S] [--seed N] [--name NAME]")
        name = key[2:]
        val = argv[i + 1]
        if name == "name":
            opts[name] = val
        elif name in ("port", "samples", "seed"):
            opts[name] = int(val)
        else:
            opts[name] = float(val)
        i += 2
    opts["lifetime"] = max(1.0, min(opts["lifetime"], 3600.0))
    return opts


def sink(listener: socket.socket, life_r: int, deadline: float) -> None:
    """Accept and hold connections; drop each when it fails or ends."""
    poller = select.poll()
    poller.register(listener.fileno(), select.POLLIN)
    poller.register(life_r, select.POLLIN | select.POLLHUP)
    held = {}
    while time.monotonic() < deadline:
        for fd, _ in poller.poll(500):
            if fd == life_r:
                os._exit(0)  # the parent is gone
            if fd == listener.fileno():
                try:
                    conn, _ = listener.accept()
                except OSError:
                    continue
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
                held[conn.fileno()] = conn
                poller.register(conn.fileno(), select.POLLIN | select.POLLHUP | select.POLLERR)
                continue
            conn = held.get(fd)
            if conn is None:
                continue
            try:
                data = conn.recv(4096)
            except OSError:
                data = b""
            if not data:
                poller.unregister(fd)
                del held[fd]
                conn.close()
    os._exit(3)


def wait_go(deadline: float) -> bool:
    buf = b""
    while time.monotonic() < deadline:
        r, _, _ = select.select([sys.stdin], [], [], 1.0)
        if not r:
            continue
        chunk = os.read(sys.stdin.fileno(), 4096)
        if not chunk:
            return False
        buf += chunk
        if b"\n" in buf:
            return buf.split(b"\n", 1)[0].strip() == b"go"
    return False


def stdin_says_stop(wait_s: float) -> bool:
    """Sleep wait_s, returning True at once when stdin ends or says quit."""
    r, _, _ = select.select([sys.stdin], [], [], max(0.0, wait_s))
    if not r:
        return False
    chunk = os.read(sys.stdin.fileno(), 4096)
    return not chunk or b"quit" in chunk


def one_sample(i: int, port: int, timeout: float, gap_ms: float) -> dict:
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        c.connect(("127.0.0.1", port))
        t0 = time.monotonic_ns()
        w0 = time.time_ns()
        lport = c.getsockname()[1]
        c.settimeout(timeout)
        try:
            data = c.recv(1)
            result = "eof" if data == b"" else "data"
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


def main() -> None:
    o = parse_args(sys.argv)
    deadline = time.monotonic() + o["lifetime"]
    signal.alarm(int(o["lifetime"]) + 2)  # hard stop even if something below hangs
    rng = random.Random(o["seed"])

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("127.0.0.1", o["port"]))
    except OSError as e:
        fail("cannot listen on 127.0.0.1:%d: %s" % (o["port"], e))
    listener.listen(64)

    life_r, life_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(life_w)
        signal.alarm(int(o["lifetime"]) + 2)
        set_name((o["name"] + "-sink")[:15])
        try:
            sink(listener, life_r, deadline)
        except BaseException as e:
            fail("sink: %r" % (e,))
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

    set_name(o["name"])
    sys.stdout.write("ready %d %d\n" % (o["port"], pid))
    sys.stdout.flush()
    if not wait_go(deadline):
        stop()

    done = 0
    for i in range(o["samples"]):
        gap = rng.uniform(0.0, o["gap-max"])
        if stdin_says_stop(gap) or time.monotonic() + o["timeout"] > deadline:
            break
        sample = one_sample(i, o["port"], o["timeout"], gap * 1000)
        sys.stdout.write(json.dumps(sample) + "\n")
        sys.stdout.flush()
        done += 1
    sys.stdout.write("done %d\n" % done)
    sys.stdout.flush()
    stop()


if __name__ == "__main__":
    main()
