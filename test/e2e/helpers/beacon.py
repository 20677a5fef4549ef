# A short-lived-connection client for the eBPF sensor test. Names itself (the kernel's comm)
# with argv[1] through prctl(PR_SET_NAME) before opening any socket, then makes COUNT
# connections from BIND_HOST to HOST:PORT, each held HOLD_MS (default 1) milliseconds after one
# byte is sent: even ones closed normally, odd ones reset (SO_LINGER 0). Prints one JSON line with its
# pid and each connection's local port, in order, then exits.
# Usage: beacon.py NAME HOST PORT COUNT BIND_HOST [HOLD_MS]
import ctypes, json, os, socket, struct, sys, time

name, host, port, count, bind_host = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
hold = (float(sys.argv[6]) if len(sys.argv) > 6 else 1.0) / 1000
PR_SET_NAME = 15
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(PR_SET_NAME, name.encode(), 0, 0, 0) != 0:
    sys.exit(f"prctl(PR_SET_NAME) failed: {os.strerror(ctypes.get_errno())}")
family = socket.AF_INET6 if ":" in host else socket.AF_INET
ports = []
for i in range(count):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.bind((bind_host, 0))
    s.connect((host, port))
    ports.append(s.getsockname()[1])
    s.sendall(b"x")
    time.sleep(hold)
    if i % 2 == 1:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
print(json.dumps({"pid": os.getpid(), "ports": ports}), flush=True)
