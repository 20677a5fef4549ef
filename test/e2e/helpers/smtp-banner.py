# A port-25 server that sends its banner a while after each accept, and clients that wait for
# it, as an SMTP client does before its first word. Reads commands from stdin:
#   "connect NAME" forks a client process named NAME (prctl PR_SET_NAME) that connects and waits
#   (at most 5 s) for its first data; this process then prints one JSON line
#   {"name", "pid", "port" (the client's local port), "result"}, result being "banner" (the banner
#   came first), "eof", "timeout" or the errno name of the failed read (ECONNRESET, ...).
# Prints "ready" once listening; exits when stdin closes, at most 2 minutes after starting.
# Usage: smtp-banner.py PORT BANNER_DELAY_MS
import ctypes, errno, json, os, select, socket, sys, time

port, delay = int(sys.argv[1]), float(sys.argv[2]) / 1000
BANNER = b"220 test.invalid ESMTP\r\n"
libc = ctypes.CDLL(None, use_errno=True)

srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(16)


def client(name, w):
    if libc.prctl(15, name.encode(), 0, 0, 0) != 0:
        os._exit(3)
    c = socket.socket()
    c.connect(("127.0.0.1", port))
    local = c.getsockname()[1]
    c.settimeout(5)
    try:
        data = c.recv(64)
        result = "banner" if data.startswith(b"220 ") else "eof" if data == b"" else "data"
    except socket.timeout:
        result = "timeout"
    except OSError as e:
        result = errno.errorcode.get(e.errno, str(e.errno))
    os.write(w, json.dumps({"name": name, "pid": os.getpid(), "port": local, "result": result}).encode())
    os._exit(0)


print("ready", flush=True)
deadline = time.monotonic() + 120
# Accepted connections waiting for their banner: (due time, socket); kept open afterwards.
due, held, results = [], [], {}
while time.monotonic() < deadline:
    now = time.monotonic()
    timeout = max(0.0, min([t for t, _ in due], default=now + 0.5) - now)
    readable, _, _ = select.select([sys.stdin, srv, *results], [], [], timeout)
    if sys.stdin in readable:
        line = sys.stdin.readline()
        if not line:
            break
        cmd, _, name = line.strip().partition(" ")
        if cmd == "connect":
            r, w = os.pipe()
            if os.fork() == 0:
                os.close(r)
                client(name, w)
            os.close(w)
            results[r] = b""
    if srv in readable:
        conn, _ = srv.accept()
        due.append((time.monotonic() + delay, conn))
    for r in [r for r in readable if r in results]:
        chunk = os.read(r, 4096)
        if chunk:
            results[r] += chunk
            continue
        print(results.pop(r).decode(), flush=True)
        os.close(r)
        try:
            os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            pass
    now = time.monotonic()
    for item in [d for d in due if d[0] <= now]:
        due.remove(item)
        try:
            item[1].sendall(BANNER)
        except OSError:
            pass  # the client's side was closed first: nothing to say to it
        held.append(item[1])
