"""listen and connect: a named listener and a named client making short connections to it, each
connection's addresses and ending written down (see traffic.py for the usage)."""

import json
import os
import select
import socket
import sys
import time

from common import close_as, fail, listen, positional, say, serve, set_name

PATTERNS = ("mixed", "alternate", "burst", "reuse", "churn")


def listen_mode(argv):
    name, host, port = positional(argv, ["NAME", "HOST", "PORT"])
    set_name(name)
    srv = listen(host, int(port), 4096)
    say("ready %d" % os.getpid())
    serve([srv], sys.stdin.fileno(), time.monotonic() + 300)


def connect_mode(argv):
    name, host, port, count, bind_host, first_port, pattern, extra, ballast = positional(
        argv, ["NAME", "HOST", "PORT", "COUNT", "BIND_HOST", "FIRST_PORT", "PATTERN"], ["HOLD_MS|RATE", "BALLAST"])
    port, count, first_port = int(port), int(count), int(first_port)
    if pattern not in PATTERNS:
        fail("unknown pattern %r" % pattern, 1)
    churn = pattern == "churn"
    hold = 0 if churn else (float(extra) if extra is not None else 1.0) / 1000
    rate = float(extra) if churn else 0
    ballast = int(ballast) if churn and ballast is not None else 0
    set_name(name)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET

    def mode_of(i):
        if pattern == "burst":
            return "held" if i % 2 == 0 else "reset"
        if pattern == "reuse":
            return "held" if i == count - 1 else "reset"
        if pattern == "alternate":
            return "reset" if i % 2 == 1 else "normal"
        if churn:
            return "held" if i < ballast else ("held", "reset", "normal", "peer")[i % 4]
        return "reset" if i % 2 == 1 else ("peer" if i % 4 == 2 else "normal")

    connections, held = [], []
    start = None
    for i in range(count):
        if churn and i == ballast and ballast > 0:
            say("ready")
            if sys.stdin.readline() == "":
                fail("stdin closed before the go-ahead", 1)
        if churn and i >= ballast:
            start = start or time.monotonic()
            delay = start + (i - ballast) / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        mode = mode_of(i)
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((bind_host, 0 if not first_port else first_port if pattern == "reuse" else first_port + i))
        s.connect((host, port))
        local, remote = s.getsockname(), s.getpeername()
        connections.append({"local": [local[0], local[1]], "remote": [remote[0], remote[1]], "mode": mode})
        if mode == "held":
            s.sendall(b"h")
            held.append(s)
            continue
        if pattern in ("mixed", "alternate", "churn"):
            s.sendall(b"p" if mode == "peer" else b"x")
            time.sleep(hold)
        close_as(s, mode, 10)
    say(json.dumps({"pid": os.getpid(), "connections": connections}))
    if held or churn:
        select.select([sys.stdin], [], [], 300)
