# Drives one TCP connection through known states, one step per line read from stdin, so a test
# can let the watcher see each step before taking the next. Prints "ok <step> <ports>" after each.
# Exits after 60 s at most.
import socket, sys, select, json

port = int(sys.argv[1])
srv = cli = acc = None
def say(*words):
    print(" ".join(str(w) for w in words), flush=True)

while True:
    ready, _, _ = select.select([sys.stdin], [], [], 60)
    if not ready:
        break
    line = sys.stdin.readline().strip()
    if not line or line == "quit":
        break
    if line == "listen":
        srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", port)); srv.listen(4)
        say("ok", line)
    elif line == "connect":
        cli = socket.socket(); cli.connect(("127.0.0.1", port)); acc, _ = srv.accept()
        say("ok", line, json.dumps({"client": cli.getsockname()[1]}))
    elif line == "server-shutdown":
        acc.shutdown(socket.SHUT_WR)   # server FIN_WAIT2, client CLOSE_WAIT
        say("ok", line)
    elif line == "client-close":
        cli.close()                    # client LAST_ACK -> gone; server FIN_WAIT2 -> TIME_WAIT
        say("ok", line)
    elif line == "stop-listening":
        srv.close()
        say("ok", line)
    elif line.startswith("burst "):
        # Short connections that live a few milliseconds, all closed with a reset (SO_LINGER 0)
        # so that neither side lingers in TIME_WAIT: only destroy notices can reveal them.
        n = int(line.split()[1]); ports = []
        for _ in range(n):
            c = socket.socket(); c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            c.connect(("127.0.0.1", port)); a, _ = srv.accept()
            a.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            ports.append(c.getsockname()[1]); c.close(); a.close()
        say("ok", "burst", json.dumps(ports))
    else:
        say("error unknown step", line)
