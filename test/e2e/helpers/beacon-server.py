# The listener for the eBPF sensor test: names itself with argv[1] (prctl PR_SET_NAME), listens
# on HOST:PORT, prints "ready PID", then accepts connections one at a time, reads each until end
# of stream or reset, and closes it. Exits when stdin closes (at most 2 minutes).
# Usage: beacon-server.py NAME HOST PORT
import ctypes, os, select, socket, sys, time

name, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(15, name.encode(), 0, 0, 0) != 0:
    sys.exit(f"prctl(PR_SET_NAME) failed: {os.strerror(ctypes.get_errno())}")
family = socket.AF_INET6 if ":" in host else socket.AF_INET
srv = socket.socket(family, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((host, port))
srv.listen(256)
print(f"ready {os.getpid()}", flush=True)
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    readable, _, _ = select.select([srv, sys.stdin], [], [], 1.0)
    if sys.stdin in readable and sys.stdin.read(1) == "":
        break
    if srv in readable:
        conn, _ = srv.accept()
        conn.settimeout(5)
        try:
            while conn.recv(4096):
                pass
        except OSError:
            pass
        conn.close()
srv.close()
