# A named TCP listener for connections.py and the like: names itself with argv[1] (prctl
# PR_SET_NAME), listens on HOST:PORT, prints "ready PID", then serves every connection at once
# (selectors): the first byte says what the client wants. "p": this side closes first; "h" or
# anything else: held until the client closes or resets it, then closed. Prints nothing more;
# exits when stdin closes (at most 5 minutes).
# Usage: listener.py NAME HOST PORT
import ctypes, os, selectors, socket, sys, time

name, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(15, name.encode(), 0, 0, 0) != 0:
    sys.exit(f"prctl(PR_SET_NAME) failed: {os.strerror(ctypes.get_errno())}")
family = socket.AF_INET6 if ":" in host else socket.AF_INET
srv = socket.socket(family, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((host, port))
srv.listen(4096)
srv.setblocking(False)
sel = selectors.DefaultSelector()
sel.register(srv, selectors.EVENT_READ, "listener")
sel.register(sys.stdin, selectors.EVENT_READ, "stdin")
print(f"ready {os.getpid()}", flush=True)


def finish(conn):
    sel.unregister(conn)
    conn.close()


deadline = time.monotonic() + 300
while time.monotonic() < deadline:
    for key, _ in sel.select(1.0):
        if key.data == "stdin":
            if sys.stdin.read(1) == "":
                sys.exit(0)
        elif key.data == "listener":
            # Everything waiting: a burst fills the accept queue faster than one a wake-up.
            while True:
                try:
                    conn, _ = srv.accept()
                except (BlockingIOError, InterruptedError):
                    break
                except ConnectionAbortedError:
                    continue
                conn.setblocking(False)
                sel.register(conn, selectors.EVENT_READ, "first")
        else:
            conn = key.fileobj
            try:
                data = conn.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                finish(conn)
                continue
            if not data:
                finish(conn)
            elif key.data == "first":
                if data[:1] == b"p":
                    finish(conn)
                else:
                    sel.modify(conn, selectors.EVENT_READ, "held")
