# Short-lived TCP connections under a chosen process name. Names itself (the kernel's comm) with
# argv[1] through prctl(PR_SET_NAME) before opening any socket, then connects COUNT times from
# BIND_HOST (local port FIRST_PORT + i, or any when FIRST_PORT is 0) to HOST:PORT of
# listener.py, and prints one JSON line: its pid and, per connection, the addresses it saw
# (getsockname, getpeername) and how it ended.
#
# PATTERN "mixed": each connection is held HOLD_MS (default 1) ms after its first byte; odd ones
# are reset (SO_LINGER 0), the others closed normally, every fourth by the server first (this side
# closes once it reads the end of stream). Exits after printing.
# PATTERN "alternate": as "mixed", but this side closes every even one normally: no peer closes.
# PATTERN "burst": no pause anywhere; even connections stay open, odd ones are reset at once.
# PATTERN "reuse": every connection from FIRST_PORT itself, each reset at once but the last,
# which stays open. "burst" and "reuse" print, then hold the open ones until stdin closes (at
# most 5 minutes).
# PATTERN "churn": a steady stream of every kind, for counting what a watcher reports of each:
# RATE connections a second on a fixed schedule, connection i held (i % 4 == 0: until stdin
# closes), reset at once after its first byte (1), closed normally after it (2), or closed by the
# server first (3). The first BALLAST connections (default 0) are all held and made as fast as
# they can be, then it prints "ready" and waits for a line on stdin before the others: many
# sockets make each dump of the socket table longer, and the sensor's records more likely to
# arrive while one is taken, and made before a watcher starts they are in its first look, not a
# burst of changes that could overflow its buffers. Prints, then holds until stdin closes.
# Usage: connections.py NAME HOST PORT COUNT BIND_HOST FIRST_PORT PATTERN [HOLD_MS]
#        connections.py NAME HOST PORT COUNT BIND_HOST FIRST_PORT churn RATE [BALLAST]
import ctypes, json, os, select, socket, struct, sys, time

name, host, port, count, bind_host, first_port, pattern = sys.argv[1:8]
port, count, first_port = int(port), int(count), int(first_port)
churn = pattern == "churn"
hold = 0 if churn else (float(sys.argv[8]) if len(sys.argv) > 8 else 1.0) / 1000
rate = float(sys.argv[8]) if churn else 0
ballast = int(sys.argv[9]) if churn and len(sys.argv) > 9 else 0
if pattern not in ("mixed", "alternate", "burst", "reuse", "churn"):
    sys.exit(f"unknown pattern {pattern!r}")
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(15, name.encode(), 0, 0, 0) != 0:
    sys.exit(f"prctl(PR_SET_NAME) failed: {os.strerror(ctypes.get_errno())}")
family = socket.AF_INET6 if ":" in host else socket.AF_INET
RESET = struct.pack("ii", 1, 0)


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
        print("ready", flush=True)
        if sys.stdin.readline() == "":
            sys.exit("stdin closed before the go-ahead")
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
    if mode == "peer":
        s.settimeout(10)
        while s.recv(4096):
            pass
    if mode == "reset":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
    s.close()
print(json.dumps({"pid": os.getpid(), "connections": connections}), flush=True)
if held or churn:
    select.select([sys.stdin], [], [], 300)
