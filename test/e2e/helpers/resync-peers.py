# Peers for the resync test, each in the caller's network namespace. Each prints one line when
# ready and holds until stdin closes (at most 2 minutes).
#   server PORT      listens on 127.0.0.1:PORT; closes each accepted connection at end of stream
#   clients PORT N   opens N connections to PORT, prints their local ports as a JSON list; on a
#                    line on stdin closes them all (this side closes first: TIME_WAIT stays here)
#                    and prints "closed"
#   marker PORT NS   creates its socket here, then moves itself to the network namespace NS (a
#                    path such as /run/netns/NAME) and connects: the socket lives here, its process
#                    elsewhere, so the eBPF sensor (which places sockets by their process's
#                    namespace) leaves it out and only a full snapshot reports it. Prints its
#                    local port.
#   udp              a UDP socket bound to 127.0.0.1, port chosen by the kernel; prints the port
import ctypes, json, os, select, socket, sys, time

HOST = "127.0.0.1"
CLONE_NEWNET = 0x40000000
DEADLINE = time.monotonic() + 120


def hold():
    while time.monotonic() < DEADLINE:
        readable, _, _ = select.select([sys.stdin], [], [], 1.0)
        if readable and sys.stdin.readline() == "":
            return


mode = sys.argv[1]
if mode == "server":
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((HOST, int(sys.argv[2])))
    srv.listen(64)
    print("ready", flush=True)
    conns = []
    while time.monotonic() < DEADLINE:
        readable, _, _ = select.select([srv, sys.stdin, *conns], [], [], 1.0)
        if sys.stdin in readable and sys.stdin.readline() == "":
            break
        for r in readable:
            if r is srv:
                conns.append(srv.accept()[0])
            elif r is not sys.stdin:
                try:
                    data = r.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    conns.remove(r)
                    r.close()
elif mode == "clients":
    cs = [socket.create_connection((HOST, int(sys.argv[2]))) for _ in range(int(sys.argv[3]))]
    print(json.dumps([c.getsockname()[1] for c in cs]), flush=True)
    sys.stdin.readline()
    for c in cs:
        c.close()
    print("closed", flush=True)
    hold()
elif mode == "marker":
    s = socket.socket()
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(sys.argv[3], os.O_RDONLY)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        sys.exit(f"setns failed: {os.strerror(ctypes.get_errno())}")
    os.close(fd)
    s.connect((HOST, int(sys.argv[2])))
    print(s.getsockname()[1], flush=True)
    hold()
elif mode == "udp":
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((HOST, 0))
    print(u.getsockname()[1], flush=True)
    hold()
else:
    sys.exit(f"unknown mode {mode}")
