# Holds connections for the close tests and reports what their ends see. Commands on stdin, one
# answer line each: "ports" (JSON of every endpoint), "read NAME" (what a recv on that end gives
# within 2 s: data, eof, timeout or the errno name), "send NAME", "udp" (how the blocked UDP
# receive ended, waiting up to 3 s). Exits on "quit", end of input, or after 120 s.
import socket, sys, select, json, threading, errno, time

P4, P6, PU = (int(x) for x in sys.argv[1:4])
ends = {}
def pair(family, host, port, name):
    srv = socket.socket(family, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port)); srv.listen(8)
    ends[name + "-listener"] = srv
    for tag in ("a", "b"):
        c = socket.socket(family, socket.SOCK_STREAM); c.connect((host, port)); s, _ = srv.accept()
        ends[f"{name}-{tag}-client"] = c; ends[f"{name}-{tag}-server"] = s

pair(socket.AF_INET, "127.0.0.1", P4, "v4")
pair(socket.AF_INET6, "::1", P6, "v6")
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.bind(("127.0.0.1", PU))
udp_result = {"value": None}
def blocked_receive():
    try:
        data = udp.recv(100)
        udp_result["value"] = "eof" if data == b"" else "data"
    except OSError as e:
        udp_result["value"] = errno.errorcode.get(e.errno, str(e.errno))
threading.Thread(target=blocked_receive, daemon=True).start()

def describe():
    out = {}
    for name, s in ends.items():
        local = s.getsockname()
        try: remote = s.getpeername()
        except OSError: remote = None
        out[name] = {"local": list(local[:2]), "remote": list(remote[:2]) if remote else None}
    out["udp"] = {"local": list(udp.getsockname()[:2]), "remote": None}
    return out

print("ready", flush=True)
deadline = time.time() + 120
while time.time() < deadline:
    ready, _, _ = select.select([sys.stdin], [], [], 1)
    if not ready: continue
    line = sys.stdin.readline().strip()
    if not line or line == "quit": break
    cmd, _, arg = line.partition(" ")
    if cmd == "ports":
        print(json.dumps(describe()), flush=True)
    elif cmd == "read":
        s = ends[arg]; s.settimeout(2)
        try:
            data = s.recv(100); print("eof" if data == b"" else "data", flush=True)
        except socket.timeout:
            print("timeout", flush=True)
        except OSError as e:
            print(errno.errorcode.get(e.errno, str(e.errno)), flush=True)
    elif cmd == "send":
        try:
            ends[arg].send(b"ping"); print("sent", flush=True)
        except OSError as e:
            print(errno.errorcode.get(e.errno, str(e.errno)), flush=True)
    elif cmd == "udp":
        for _ in range(30):
            if udp_result["value"] is not None: break
            time.sleep(0.1)
        print(udp_result["value"] or "still-blocked", flush=True)
    else:
        print("unknown", flush=True)
