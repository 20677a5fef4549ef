# A steady stream of connections of every kind, for counting what a watcher reports of each.
# Names itself (the kernel's comm) with argv[1], then opens COUNT connections to HOST:PORT of
# short-server.py at RATE a second (one every 1/RATE s, on a fixed schedule), from BIND_HOST and
# local port FIRST_PORT + i, so that every connection has a 4-tuple of its own. Connection i is:
#   i % 4 == 0 "held":   stays open until stdin closes;
#   i % 4 == 1 "reset":  reset at once (SO_LINGER 0) after its first byte;
#   i % 4 == 2 "normal": closed normally after its first byte (this side goes to TIME_WAIT);
#   i % 4 == 3 "peer":   the server closes first (its side goes to TIME_WAIT), then this side.
# Prints one JSON line (its pid and, per connection, its addresses and mode) once all are made,
# then holds the held ones until stdin closes (at most 5 minutes). The first BALLAST connections
# (default 0) are all held and made as fast as they can be, then it prints "ready" and waits for
# a line on stdin before the others: many sockets make each dump of the socket table longer, and
# the sensor's records more likely to arrive while one is taken, and made before a watcher starts
# they are in its first look, not a burst of changes that could overflow its buffers.
# Usage: churn-connections.py NAME HOST PORT COUNT BIND_HOST FIRST_PORT RATE [BALLAST]
import ctypes, json, os, select, socket, struct, sys, time

name, host, port, count, bind_host, first_port, rate = sys.argv[1:8]
port, count, first_port, rate = int(port), int(count), int(first_port), float(rate)
ballast = int(sys.argv[8]) if len(sys.argv) > 8 else 0
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(15, name.encode(), 0, 0, 0) != 0:
    sys.exit(f"prctl(PR_SET_NAME) failed: {os.strerror(ctypes.get_errno())}")
family = socket.AF_INET6 if ":" in host else socket.AF_INET
RESET = struct.pack("ii", 1, 0)
MODES = ("held", "reset", "normal", "peer")

connections, held = [], []
start = None
for i in range(count):
    if i == ballast and ballast > 0:
        print("ready", flush=True)
        if sys.stdin.readline() == "":
            sys.exit("stdin closed before the go-ahead")
    if i >= ballast:
        start = start or time.monotonic()
        delay = start + (i - ballast) / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    mode = "held" if i < ballast else MODES[i % 4]
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((bind_host, first_port + i))
    s.connect((host, port))
    local, remote = s.getsockname(), s.getpeername()
    connections.append({"local": [local[0], local[1]], "remote": [remote[0], remote[1]], "mode": mode})
    if mode == "held":
        s.sendall(b"h")
        held.append(s)
        continue
    s.sendall(b"p" if mode == "peer" else b"x")
    if mode == "peer":
        s.settimeout(10)
        while s.recv(4096):
            pass
    if mode == "reset":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
    s.close()
print(json.dumps({"pid": os.getpid(), "connections": connections}), flush=True)
select.select([sys.stdin], [], [], 300)
