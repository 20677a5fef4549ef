# A port-25 listener and client processes with chosen names, for the daemon tests. Reads
# commands from stdin: "connect NAME" forks a client process named NAME (prctl PR_SET_NAME) that
# connects to the listener and answers "connected NAME PORT"; "status" answers one JSON object
# {NAME: "alive" | "broken ERRNO"} probing each accepted connection; "quit" ends. Exits after
# 120 s at most.
import ctypes, errno, json, os, select, socket, sys, time

port = int(sys.argv[1]) if len(sys.argv) > 1 else 25
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port)); srv.listen(16)
accepted = {}
children = []
print("ready", flush=True)
deadline = time.time() + 120
while time.time() < deadline:
    r, _, _ = select.select([sys.stdin], [], [], 0.5)
    if not r: continue
    line = sys.stdin.readline().strip()
    if not line or line == "quit": break
    cmd, _, arg = line.partition(" ")
    if cmd == "connect":
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(rfd)
            ctypes.CDLL(None).prctl(15, arg.encode(), 0, 0, 0)
            c = socket.socket(); c.connect(("127.0.0.1", port))
            os.write(wfd, str(c.getsockname()[1]).encode()); os.close(wfd)
            # Hold the connection until the parent goes away or 120 s pass.
            end = time.time() + 120
            while time.time() < end and os.getppid() != 1:
                time.sleep(0.2)
            os._exit(0)
        os.close(wfd)
        cport = int(os.read(rfd, 16)); os.close(rfd)
        a, _ = srv.accept()
        accepted[arg] = a
        children.append(pid)
        print(f"connected {arg} {cport} {pid}", flush=True)
    elif cmd == "status":
        out = {}
        for name, a in accepted.items():
            a.setblocking(False)
            try:
                data = a.recv(1)
                out[name] = "broken eof" if data == b"" else "alive"
            except BlockingIOError:
                out[name] = "alive"
            except OSError as e:
                out[name] = "broken " + errno.errorcode.get(e.errno, str(e.errno))
        print(json.dumps(out), flush=True)
for pid in children:
    try: os.kill(pid, 9)
    except OSError: pass
