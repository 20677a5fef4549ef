"""Three loopback connections that each move a known number of bytes and end differently.

Usage: counted-connections.py hold|exchange HOST PORT

`hold` listens on HOST:PORT, holds one connection to itself, prints its client port and waits
until stdin closes: a watcher's report of it says the watcher runs. `exchange` listens on
HOST:PORT, makes three connections to itself, then also waits until stdin closes:
  reset   the client sends, the server answers, the client closes with SO_LINGER 0 (RST)
  normal  the same, then the client closes first and the server after reading end-of-file
  peer    the same, then the server closes first and the client after reading end-of-file
and prints one JSON line: for each, the client's port, the bytes each side sent, and each side's
bytes_sent and bytes_retrans from TCP_INFO just before it closed. Every exchange is read in full
and acknowledged before any close, so no data is sent after that reading: a side's bytes_sent then
is its final one (it counts retransmitted bytes too, which a loaded machine can cause even on
loopback; bytes_sent - bytes_retrans is the payload).
"""
import fcntl
import json
import socket
import struct
import sys
import termios
import time

TCP_INFO_BYTES_SENT = 200
TCP_INFO_BYTES_RETRANS = 208

what, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((host, port))
srv.listen(16)
if what == "hold":
    held = socket.create_connection((host, port))
    held_peer, _ = srv.accept()
    print(held.getsockname()[1], flush=True)
    sys.stdin.read()
    sys.exit(0)


def read_exactly(s, n):
    got = 0
    while got < n:
        chunk = s.recv(min(65536, n - got))
        if not chunk:
            raise SystemExit(f"end of stream after {got} of {n} bytes")
        got += len(chunk)


def read_end(s):
    """Reads until end-of-file or reset; nothing more is expected."""
    try:
        extra = s.recv(1)
    except ConnectionResetError:
        return
    if extra:
        raise SystemExit("unexpected data before end-of-file")


def acked_info(s):
    """Waits (bounded) until all s sent is acknowledged; returns its bytes_sent and bytes_retrans."""
    deadline = time.monotonic() + 10
    while struct.unpack("i", fcntl.ioctl(s, termios.TIOCOUTQ, b"\0" * 4))[0] != 0:
        if time.monotonic() > deadline:
            raise SystemExit("data still unacknowledged after 10 s")
        time.sleep(0.001)
    info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)
    if len(info) < TCP_INFO_BYTES_RETRANS + 8:
        raise SystemExit(f"tcp_info is {len(info)} bytes: this kernel has no bytes_sent (4.19+)")
    sent, retrans = struct.unpack_from("<QQ", info, TCP_INFO_BYTES_SENT)
    return {"bytesSent": sent, "bytesRetrans": retrans}


results = []
for mode, sent, answered in (("reset", 1000, 111), ("normal", 20000, 2222), ("peer", 300000, 33)):
    client = socket.create_connection((host, port))
    server, _ = srv.accept()
    client.sendall(b"c" * sent)
    read_exactly(server, sent)
    server.sendall(b"s" * answered)
    read_exactly(client, answered)
    results.append({
        "mode": mode, "clientPort": client.getsockname()[1], "clientSent": sent, "serverSent": answered,
        "clientInfo": acked_info(client), "serverInfo": acked_info(server),
    })
    if mode == "reset":
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        read_end(server)
        server.close()
    elif mode == "normal":
        client.close()
        read_end(server)
        server.close()
    else:
        server.close()
        read_end(client)
        client.close()
print(json.dumps(results), flush=True)
# Alive until told: a watcher that is behind can still find this process's network namespace.
sys.stdin.read()
