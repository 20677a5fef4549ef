# Holds loopback TCP connections on demand: prints "ready PORT" (its listener), then for each
# line on stdin connects once more and prints "connected CLIENTPORT". A watcher may close the
# connection before connect() returns (the eBPF sensor is that quick): the port, taken at bind(),
# is printed all the same. Exits when stdin closes or after 120 s.
import socket, sys, time

listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(16)
listener.settimeout(2)
port = listener.getsockname()[1]
print(f"ready {port}", flush=True)
held = []
end = time.time() + 120
while time.time() < end:
    if not sys.stdin.readline():
        break
    client = socket.socket()
    client.bind(("127.0.0.1", 0))
    client_port = client.getsockname()[1]
    client.settimeout(5)
    try:
        client.connect(("127.0.0.1", port))
        held.append(listener.accept()[0])
    except OSError:
        pass
    held.append(client)
    print(f"connected {client_port}", flush=True)
