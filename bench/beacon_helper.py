#!/usr/bin/python3
"""Short-lived TCP connections for the watch suite's short-connection phase.

Usage: beacon_helper.py --port PORT [--name NAME] [--lifetime S]

A forked child (named NAME-srv, cut to 15 characters) listens on 127.0.0.1:PORT
and serves each connection by its first byte: "n" - wait for the client to
close; "p" - close at once (the peer closes first); "h" - hold until the client
goes. This process renames itself NAME (default sw-beacon) before opening any
socket, prints "ready PORT SERVERPID" and reads commands from stdin:

  hold            open one connection and keep it open; prints "held LOCALPORT"
  burst N SEED    N connections, one after another, each open for a time uniform
                  in [1, 5] ms, then closed in turn: normally (fin), with a reset
                  (SO_LINGER 0: rst), or by the peer (peer); a pause uniform in
                  [0, 5] ms between them. Prints one JSON line: {"pid", "ms",
                  "conns": [{"port", "mode", "holdMs"}]}
  quit            exit (so does EOF on stdin, and --lifetime seconds in any case)

The process stays alive after its connections are gone: a watcher can still
find it by its PID. Run it inside the benchmark's network namespace; traffic
stays on loopback.
"""

import ctypes
import json
import os
import random
import selectors
import signal
import socket
import struct
import sys
import time

HOST = "127.0.0.1"
LINGER0 = struct.pack("ii", 1, 0)
MODES = ("fin", "rst", "peer")


def fail(msg):
    sys.stderr.write("beacon_helper[%d]: %s\n" % (os.getpid(), msg))
    sys.stderr.flush()
    os._exit(2)


def set_name(name):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(15, name.encode()[:15], 0, 0, 0) != 0:  # PR_SET_NAME
        fail("prctl(PR_SET_NAME) failed: %s" % os.strerror(ctypes.get_errno()))


def parse_args(argv):
    opts = {"port": None, "name": "sw-beacon", "lifetime": 600.0}
    i = 1
    while i < len(argv):
        key = argv[i][2:] if argv[i].startswith("--") else None
        if key not in opts or i + 1 >= len(argv):
            fail("usage: beacon_helper.py --port PORT [--name NAME] [--lifetime S]")
        opts[key] = argv[i + 1]
        i += 2
    if opts["port"] is None:
        fail("--port is required")
    return int(opts["port"]), opts["name"], float(opts["lifetime"])


def serve(listener):
    """The server child: one selector over the listener and every accepted connection."""
    sel = selectors.DefaultSelector()
    listener.setblocking(False)
    sel.register(listener, selectors.EVENT_READ, None)
    while True:
        for key, _ in sel.select():
            if key.data is None:
                try:
                    conn, _ = listener.accept()
                except BlockingIOError:
                    continue
                conn.setblocking(False)
                sel.register(conn, selectors.EVENT_READ, "new")
                continue
            conn = key.fileobj
            try:
                data = conn.recv(64)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if data and b"p" not in data:
                if key.data == "new":
                    sel.modify(conn, selectors.EVENT_READ, "open")
                continue
            # End of stream, an error, or "p": this side closes.
            sel.unregister(conn)
            conn.close()


def connect(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((HOST, 0))
    s.connect((HOST, port))
    return s


def burst(port, n, seed):
    rng = random.Random(seed)
    conns = []
    t0 = time.monotonic()
    for i in range(n):
        mode = MODES[i % len(MODES)]
        hold_ms = rng.uniform(1.0, 5.0)
        opened = time.monotonic()
        s = connect(port)
        local = s.getsockname()[1]
        if mode == "peer":
            s.sendall(b"n")
            time.sleep(max(0.0, hold_ms / 1000 - (time.monotonic() - opened)))
            s.sendall(b"p")
            s.settimeout(2.0)
            try:
                while s.recv(64):
                    pass
            except OSError:
                pass
        else:
            s.sendall(b"n")
            time.sleep(max(0.0, hold_ms / 1000 - (time.monotonic() - opened)))
            if mode == "rst":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
        s.close()
        conns.append({"port": local, "mode": mode, "holdMs": round((time.monotonic() - opened) * 1000, 3)})
        time.sleep(rng.uniform(0.0, 0.005))
    return {"pid": os.getpid(), "ms": round((time.monotonic() - t0) * 1000, 1), "conns": conns}


def main():
    port, name, lifetime = parse_args(sys.argv)
    set_name(name)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, port))
    listener.listen(1024)
    child = os.fork()
    if child == 0:
        set_name((name + "-srv")[:15])
        # Ends with its parent: the parent's exit closes nothing here, so watch for it.
        signal.signal(signal.SIGALRM, lambda *_: os._exit(0))
        signal.alarm(int(lifetime) + 5)
        try:
            ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        except Exception:
            pass
        serve(listener)
        os._exit(0)
    listener.close()
    signal.signal(signal.SIGALRM, lambda *_: os._exit(0))
    signal.alarm(int(lifetime))
    print("ready %d %d" % (port, child), flush=True)
    held = []
    try:
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            if words[0] == "quit":
                break
            if words[0] == "hold":
                s = connect(port)
                s.sendall(b"h")
                held.append(s)
                print("held %d" % s.getsockname()[1], flush=True)
            elif words[0] == "burst" and len(words) == 3:
                print(json.dumps(burst(port, int(words[1]), int(words[2]))), flush=True)
            else:
                fail("unknown command: %r" % line)
    finally:
        for s in held:
            # A reset leaves no TIME_WAIT behind for the next phase to wait out.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
            s.close()
        try:
            os.kill(child, signal.SIGKILL)
        except OSError:
            pass


if __name__ == "__main__":
    main()
