#!/usr/bin/python3
"""Open a known set of sockets inside a private network namespace and describe them.

Run as root inside a fresh namespace (`ip netns exec NS /usr/bin/python3 scenario.py`). The
script prints one JSON line describing every socket it expects the kernel to list, then the line
"ready", and keeps everything open until its stdin closes (or MAX_LIFETIME_S passes, so a
forgotten run cannot linger).

Three processes hold sockets, so that several pids show up:
  * this process ("python3"): listeners, the server side of connections, bound UDP sockets;
  * a forked child that shares one listener with this process (two pids on one socket);
  * a peer started from this file with --peer, which renames itself "swpeer" and holds the
    client side of most connections.

Kernel states covered: LISTEN, ESTABLISHED (v4, v6, v4-mapped on a dual-stack listener, and one
sitting unaccepted in a listener's queue, which has no owner), FIN_WAIT2 / CLOSE_WAIT,
TIME_WAIT (v4 and v6, no owner), SYN_SENT and SYN_RECV. FIN_WAIT1, LAST_ACK and CLOSING are not
covered: each lasts only until the peer's next segment, which on loopback is immediate.

Stability of the timed states, all inside this namespace only:
  * SYN_SENT: the client connects to a listener whose accept queue is full (backlog 0 with one
    unaccepted connection). The kernel drops every SYN to a listener with a full queue, so the
    client keeps retransmitting; net.ipv4.tcp_syn_retries is raised so it outlives this script.
  * SYN_RECV: a SYN is written with a raw socket from 192.0.2.1 (TEST-NET-1), routed to lo. The
    SYN-ACK goes back to 192.0.2.1, which is not a local address, so it is never answered and the
    request socket keeps retransmitting; net.ipv4.tcp_synack_retries is raised likewise.
  * TIME_WAIT lasts 60 s (fixed in the kernel): tests that need it must run well inside that.

Before printing, the script reads /proc/net/{tcp,tcp6,udp,udp6} until they list exactly the
described sockets and states (bounded wait), so the description is checked against the kernel.
"""

import ctypes
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time

MAX_LIFETIME_S = 120
SETTLE_TIMEOUT_S = 10.0

# Kernel TCP state numbers (include/net/tcp_states.h) and their names.
TCP_STATE_NAMES = {
    1: "ESTABLISHED",
    2: "SYN_SENT",
    3: "SYN_RECV",
    4: "FIN_WAIT1",
    5: "FIN_WAIT2",
    6: "TIME_WAIT",
    7: "CLOSE",
    8: "CLOSE_WAIT",
    9: "LAST_ACK",
    10: "LISTEN",
    11: "CLOSING",
}

PR_SET_PDEATHSIG = 1
TEST_NET_SOURCE = "192.0.2.1"
TEST_NET_PREFIX = "192.0.2.0/24"
TEST_NET_SOURCE_PORT = 40000

ESTABLISHED_V4_CLIENT_SENDS = 100
ESTABLISHED_V4_SERVER_SENDS = 200


def fail(message):
    sys.stderr.write("scenario: " + message + "\n")
    sys.stderr.flush()
    sys.exit(1)


def die_with_parent():
    """Ask the kernel to kill this process when its parent dies (no orphans left behind)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except OSError:
        pass


def tcp_state(sock):
    """The socket's kernel state, read from TCP_INFO (first byte is tcpi_state)."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
    return TCP_STATE_NAMES.get(info[0], "UNKNOWN(%d)" % info[0])


def wait_for_state(sock, wanted, what):
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while True:
        state = tcp_state(sock)
        if state == wanted:
            return
        if time.monotonic() > deadline:
            fail("%s: state %s, expected %s" % (what, state, wanted))
        time.sleep(0.01)


def endpoint(sock_name):
    """(address, port) from getsockname()/getpeername(), for either family."""
    return sock_name[0], sock_name[1]


def describe(name, protocol, family, local, remote, state, pids, **extra):
    entry = {
        "name": name,
        "protocol": protocol,
        "family": family,
        "localAddress": local[0],
        "localPort": local[1],
        "remoteAddress": remote[0],
        "remotePort": remote[1],
        "state": state,
        "pids": sorted(pids),
    }
    entry.update(extra)
    return entry


def unspecified(family):
    return ("0.0.0.0", 0) if family == 4 else ("::", 0)


def interfaces():
    """Names of the network interfaces of the current namespace."""
    with open("/proc/net/dev") as f:
        return [line.split(":")[0].strip() for line in f.read().splitlines()[2:]]


def write_sysctl(name, value):
    with open("/proc/sys/" + name.replace(".", "/"), "w") as f:
        f.write(str(value))


def wait_for_stdin_eof(stream, deadline):
    """Block until `stream` reaches end of file or the deadline passes."""
    fd = stream.fileno()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        readable, _, _ = select.select([fd], [], [], min(remaining, 5.0))
        if readable:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                return
            if not chunk:
                return


# ---------------------------------------------------------------------------------------------
# /proc/net reading, used to check the description against the kernel before reporting ready.


def decode_proc_address(text, family):
    hex_address, hex_port = text.split(":")
    raw = bytes.fromhex(hex_address)
    # /proc/net prints the address as 32-bit words in host byte order.
    words = [raw[i : i + 4] for i in range(0, len(raw), 4)]
    if sys.byteorder == "little":
        words = [w[::-1] for w in words]
    packed = b"".join(words)
    af = socket.AF_INET if family == 4 else socket.AF_INET6
    return socket.inet_ntop(af, packed), int(hex_port, 16)


def read_proc_net():
    rows = []
    for protocol, family, path in (
        ("tcp", 4, "/proc/net/tcp"),
        ("tcp", 6, "/proc/net/tcp6"),
        ("udp", 4, "/proc/net/udp"),
        ("udp", 6, "/proc/net/udp6"),
    ):
        with open(path) as f:
            lines = f.read().splitlines()[1:]
        for line in lines:
            fields = line.split()
            local = decode_proc_address(fields[1], family)
            remote = decode_proc_address(fields[2], family)
            state = TCP_STATE_NAMES[int(fields[3], 16)] if protocol == "tcp" else None
            rows.append((protocol, family, local[0], local[1], remote[0], remote[1], state))
    return sorted(rows, key=repr)


def description_rows(sockets):
    return sorted(
        (
            (
                s["protocol"],
                s["family"],
                s["localAddress"],
                s["localPort"],
                s["remoteAddress"],
                s["remotePort"],
                s["state"],
            )
            for s in sockets
        ),
        key=repr,
    )


def wait_until_kernel_agrees(sockets):
    expected = description_rows(sockets)
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while True:
        actual = read_proc_net()
        if actual == expected:
            return
        if time.monotonic() > deadline:
            missing = [r for r in expected if r not in actual]
            extra = [r for r in actual if r not in expected]
            fail("kernel tables do not match the description; missing %r, extra %r" % (missing, extra))
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------------
# The peer process: client ends of connections, some UDP sockets.


def run_peer(targets):
    die_with_parent()
    with open("/proc/self/comm", "w") as f:
        f.write("swpeer")
    pid = os.getpid()
    held = []
    sockets = []

    def keep(sock):
        held.append(sock)
        return sock

    # ESTABLISHED over 127.0.0.1: send some bytes, leave the server's reply unread so the
    # receive queue is known.
    c = keep(socket.create_connection(("127.0.0.1", targets["listen4"]), timeout=5))
    c.sendall(b"x" * ESTABLISHED_V4_CLIENT_SENDS)
    sockets.append({"role": "established4-client", "local": endpoint(c.getsockname())})

    # ESTABLISHED over ::1.
    c = keep(socket.create_connection(("::1", targets["listen6only"]), timeout=5))
    sockets.append({"role": "established6-client", "local": endpoint(c.getsockname())})

    # Client end of the FIN_WAIT2 / CLOSE_WAIT pair: the server shuts down its sending side,
    # this end never closes.
    c = keep(socket.create_connection(("127.0.0.1", targets["listen4"]), timeout=5))
    sockets.append({"role": "closewait-client", "local": endpoint(c.getsockname())})

    # Fill the backlog-0 listener's accept queue, then wait until the kernel shows the queued
    # connection (rx_queue of the listener in /proc/net/tcp) before sending the SYN that
    # must be dropped.
    c = keep(socket.create_connection(("127.0.0.1", targets["listenFull"]), timeout=5))
    sockets.append({"role": "queued-client", "local": endpoint(c.getsockname())})
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while listener_queue_length(targets["listenFull"]) < 1:
        if time.monotonic() > deadline:
            fail("peer: the backlog-0 listener never showed its queued connection")
        time.sleep(0.01)
    c = keep(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    c.setblocking(False)
    try:
        c.connect(("127.0.0.1", targets["listenFull"]))
    except BlockingIOError:
        pass
    sockets.append({"role": "synsent-client", "local": endpoint(c.getsockname())})

    # UDP: a dual-stack socket on ::, and connected sockets over both families.
    u = keep(socket.socket(socket.AF_INET6, socket.SOCK_DGRAM))
    u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    u.bind(("::", 0))
    sockets.append({"role": "udp6-dual", "local": endpoint(u.getsockname())})
    u = keep(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    u.connect(("127.0.0.1", targets["udp4"]))
    sockets.append({"role": "udp4-connected", "local": endpoint(u.getsockname())})
    u = keep(socket.socket(socket.AF_INET6, socket.SOCK_DGRAM))
    u.connect(("::1", targets["udp6"]))
    sockets.append({"role": "udp6-connected", "local": endpoint(u.getsockname())})

    sys.stdout.write(json.dumps({"pid": pid, "sockets": sockets}) + "\n")
    sys.stdout.flush()
    wait_for_stdin_eof(sys.stdin, time.monotonic() + MAX_LIFETIME_S)
    for s in held:
        s.close()


def listener_queue_length(port):
    with open("/proc/net/tcp") as f:
        for line in f.read().splitlines()[1:]:
            fields = line.split()
            local = decode_proc_address(fields[1], 4)
            if local[1] == port and int(fields[3], 16) == 10:
                return int(fields[4].split(":")[1], 16)
    return 0


# ---------------------------------------------------------------------------------------------
# The forked child: shares one listener with its parent and does nothing else.


def fork_sharer(shared, control_read):
    pid = os.fork()
    if pid != 0:
        return pid
    try:
        die_with_parent()
        keep = {shared.fileno(), control_read}
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
        os.close(devnull)
        for fd in os.listdir("/proc/self/fd"):
            n = int(fd)
            if n > 2 and n not in keep:
                try:
                    os.close(n)
                except OSError:
                    pass
        deadline = time.monotonic() + MAX_LIFETIME_S
        while time.monotonic() < deadline:
            readable, _, _ = select.select([control_read], [], [], 5.0)
            if readable and not os.read(control_read, 64):
                break
    finally:
        os._exit(0)


# ---------------------------------------------------------------------------------------------
# SYN_RECV: a SYN from an address that will never answer the SYN-ACK.


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return (~total) & 0xFFFF


def send_raw_syn(source, source_port, destination, destination_port):
    tcp = struct.pack(
        "!HHIIBBHHH", source_port, destination_port, 0x5EC0DE, 0, 5 << 4, 0x02, 65535, 0, 0
    )
    pseudo = socket.inet_aton(source) + socket.inet_aton(destination) + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(tcp),
        1,
        0,
        64,
        socket.IPPROTO_TCP,
        0,
        socket.inet_aton(source),
        socket.inet_aton(destination),
    )
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    try:
        raw.sendto(ip + tcp, (destination, 0))
    finally:
        raw.close()


# ---------------------------------------------------------------------------------------------


def run_main():
    if os.geteuid() != 0:
        fail("must run as root (raw socket, sysctls and routes of the private namespace)")
    # The script changes sysctls and routes: only do that in a namespace made for it, which has
    # nothing but a loopback interface.
    if interfaces() != ["lo"]:
        fail("refusing to run in a namespace with interfaces %r; run it under `ip netns exec` in a fresh namespace" % interfaces())

    started = time.monotonic()
    deadline = started + MAX_LIFETIME_S
    me = os.getpid()
    held = []
    described = []

    def keep(sock):
        held.append(sock)
        return sock

    # Timed states must outlive the script (see the module comment). Namespace-local settings.
    write_sysctl("net.ipv4.tcp_syn_retries", 9)
    write_sysctl("net.ipv4.tcp_synack_retries", 9)
    subprocess.run(["ip", "route", "replace", TEST_NET_PREFIX, "dev", "lo"], check=True, timeout=10)

    # Shared listener on 0.0.0.0, created first and handed to a forked child.
    shared = keep(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    shared.bind(("0.0.0.0", 0))
    shared.listen(8)
    control_read, control_write = os.pipe()
    child = fork_sharer(shared, control_read)
    os.close(control_read)
    described.append(
        describe("shared-listen4", "tcp", 4, endpoint(shared.getsockname()), unspecified(4), "LISTEN", [me, child])
    )

    # Listeners.
    listen4 = keep(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    listen4.bind(("127.0.0.1", 0))
    listen4.listen(16)
    described.append(describe("listen4", "tcp", 4, endpoint(listen4.getsockname()), unspecified(4), "LISTEN", [me]))

    listen6only = keep(socket.socket(socket.AF_INET6, socket.SOCK_STREAM))
    listen6only.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    listen6only.bind(("::1", 0))
    listen6only.listen(16)
    described.append(
        describe("listen6only", "tcp", 6, endpoint(listen6only.getsockname()[:2]), unspecified(6), "LISTEN", [me])
    )

    listen_dual = keep(socket.socket(socket.AF_INET6, socket.SOCK_STREAM))
    listen_dual.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    listen_dual.bind(("::", 0))
    listen_dual.listen(16)
    described.append(
        describe("listen-dual", "tcp", 6, endpoint(listen_dual.getsockname()[:2]), unspecified(6), "LISTEN", [me])
    )

    # Backlog 0: one connection fills the accept queue; it is never accepted.
    listen_full = keep(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    listen_full.bind(("127.0.0.1", 0))
    listen_full.listen(0)
    described.append(
        describe("listen-full", "tcp", 4, endpoint(listen_full.getsockname()), unspecified(4), "LISTEN", [me])
    )

    # Bound UDP sockets.
    udp4 = keep(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    udp4.bind(("127.0.0.1", 0))
    described.append(describe("udp4", "udp", 4, endpoint(udp4.getsockname()), unspecified(4), None, [me]))

    udp4_device = keep(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    udp4_device.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"lo")
    udp4_device.bind(("0.0.0.0", 0))
    described.append(
        describe(
            "udp4-device",
            "udp",
            4,
            endpoint(udp4_device.getsockname()),
            unspecified(4),
            None,
            [me],
            interface="lo",
        )
    )

    udp6 = keep(socket.socket(socket.AF_INET6, socket.SOCK_DGRAM))
    udp6.bind(("::1", 0))
    described.append(describe("udp6", "udp", 6, endpoint(udp6.getsockname()[:2]), unspecified(6), None, [me]))

    # The peer connects to the listeners and UDP sockets above.
    targets = {
        "listen4": listen4.getsockname()[1],
        "listen6only": listen6only.getsockname()[1],
        "listenFull": listen_full.getsockname()[1],
        "udp4": udp4.getsockname()[1],
        "udp6": udp6.getsockname()[1],
    }
    peer = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--peer", json.dumps(targets)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        close_fds=True,
    )
    readable, _, _ = select.select([peer.stdout], [], [], SETTLE_TIMEOUT_S)
    if not readable:
        peer.kill()
        fail("peer did not report its sockets in time")
    peer_report = json.loads(peer.stdout.readline() or "null")
    if not peer_report:
        fail("peer exited before reporting its sockets")
    peer_pid = peer_report["pid"]
    peer_sockets = {s["role"]: tuple(s["local"][:2]) for s in peer_report["sockets"]}

    # Accept connections and match them to their client by the client's port; connections
    # accepted while looking for another one wait in `unclaimed`.
    unclaimed = {}

    def accept_from(listener, client_local):
        key = (listener.fileno(), client_local[1])
        listener.settimeout(SETTLE_TIMEOUT_S)
        while key not in unclaimed:
            conn, address = listener.accept()
            unclaimed[(listener.fileno(), address[1])] = conn
        return keep(unclaimed.pop(key))

    est4_server = accept_from(listen4, peer_sockets["established4-client"])
    closewait_server = accept_from(listen4, peer_sockets["closewait-client"])
    est6_server = accept_from(listen6only, peer_sockets["established6-client"])

    received = b""
    est4_server.settimeout(SETTLE_TIMEOUT_S)
    while len(received) < ESTABLISHED_V4_CLIENT_SENDS:
        chunk = est4_server.recv(4096)
        if not chunk:
            fail("established4 client closed early")
        received += chunk
    est4_server.sendall(b"y" * ESTABLISHED_V4_SERVER_SENDS)

    closewait_server.shutdown(socket.SHUT_WR)
    wait_for_state(closewait_server, "FIN_WAIT2", "closewait server")

    local, remote = endpoint(est4_server.getsockname()), endpoint(est4_server.getpeername())
    described.append(
        describe(
            "established4-server",
            "tcp",
            4,
            local,
            remote,
            "ESTABLISHED",
            [me],
            bytesSent=ESTABLISHED_V4_SERVER_SENDS,
            bytesReceived=ESTABLISHED_V4_CLIENT_SENDS,
        )
    )
    described.append(
        describe(
            "established4-client",
            "tcp",
            4,
            remote,
            local,
            "ESTABLISHED",
            [peer_pid],
            receiveQueue=ESTABLISHED_V4_SERVER_SENDS,
        )
    )
    local, remote = endpoint(est6_server.getsockname()[:2]), endpoint(est6_server.getpeername()[:2])
    described.append(describe("established6-server", "tcp", 6, local, remote, "ESTABLISHED", [me]))
    described.append(describe("established6-client", "tcp", 6, remote, local, "ESTABLISHED", [peer_pid]))
    local, remote = endpoint(closewait_server.getsockname()), endpoint(closewait_server.getpeername())
    described.append(describe("finwait2-server", "tcp", 4, local, remote, "FIN_WAIT2", [me]))
    described.append(describe("closewait-client", "tcp", 4, remote, local, "CLOSE_WAIT", [peer_pid]))

    # The queued connection: the client end is the peer's, the server end sits unaccepted in
    # listen-full's queue with no file, so no process owns it.
    full_address = endpoint(listen_full.getsockname())
    queued = peer_sockets["queued-client"]
    described.append(describe("queued-client", "tcp", 4, queued, full_address, "ESTABLISHED", [peer_pid]))
    described.append(describe("queued-server", "tcp", 4, full_address, queued, "ESTABLISHED", []))
    described.append(
        describe("synsent-client", "tcp", 4, peer_sockets["synsent-client"], full_address, "SYN_SENT", [peer_pid])
    )

    described.append(
        describe("udp6-dual", "udp", 6, peer_sockets["udp6-dual"], unspecified(6), None, [peer_pid])
    )
    described.append(
        describe(
            "udp4-connected",
            "udp",
            4,
            peer_sockets["udp4-connected"],
            endpoint(udp4.getsockname()),
            None,
            [peer_pid],
        )
    )
    described.append(
        describe(
            "udp6-connected",
            "udp",
            6,
            peer_sockets["udp6-connected"],
            endpoint(udp6.getsockname()[:2]),
            None,
            [peer_pid],
        )
    )

    # ESTABLISHED between an IPv4 client and the dual-stack listener: the server end is an
    # IPv6 socket whose addresses are v4-mapped.
    mapped_client = keep(socket.create_connection(("127.0.0.1", listen_dual.getsockname()[1]), timeout=5))
    listen_dual.settimeout(SETTLE_TIMEOUT_S)
    mapped_server, _ = listen_dual.accept()
    keep(mapped_server)
    described.append(
        describe(
            "mapped-client",
            "tcp",
            4,
            endpoint(mapped_client.getsockname()),
            endpoint(mapped_client.getpeername()),
            "ESTABLISHED",
            [me],
        )
    )
    described.append(
        describe(
            "mapped-server",
            "tcp",
            6,
            endpoint(mapped_server.getsockname()[:2]),
            endpoint(mapped_server.getpeername()[:2]),
            "ESTABLISHED",
            [me],
        )
    )

    # TIME_WAIT, v4 and v6: the client shuts down its sending side first (active close), the
    # server then closes; the client's end becomes an ownerless TIME_WAIT entry.
    for family, listener, host in ((4, listen4, "127.0.0.1"), (6, listen6only, "::1")):
        client = socket.create_connection((host, listener.getsockname()[1]), timeout=5)
        client_local = endpoint(client.getsockname()[:2])
        server = accept_from(listener, client_local)
        held.remove(server)
        server_local = endpoint(server.getsockname()[:2])
        client.shutdown(socket.SHUT_WR)
        wait_for_state(client, "FIN_WAIT2", "time-wait client")
        server.close()
        # Once the FIN arrives the kernel moves the connection to a TIME_WAIT entry and marks
        # the original socket CLOSE.
        wait_for_state(client, "CLOSE", "time-wait client")
        client.close()
        described.append(describe("timewait%d" % family, "tcp", family, client_local, server_local, "TIME_WAIT", []))

    # SYN_RECV on listen4 from an address that never answers.
    send_raw_syn(TEST_NET_SOURCE, TEST_NET_SOURCE_PORT, "127.0.0.1", listen4.getsockname()[1])
    described.append(
        describe(
            "synrecv",
            "tcp",
            4,
            endpoint(listen4.getsockname()),
            (TEST_NET_SOURCE, TEST_NET_SOURCE_PORT),
            "SYN_RECV",
            [],
        )
    )

    wait_until_kernel_agrees(described)

    report = {
        "pid": me,
        "peerPid": peer_pid,
        "childPid": child,
        "maxLifetimeSeconds": MAX_LIFETIME_S,
        "sockets": described,
    }
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.write("ready\n")
    sys.stdout.flush()

    wait_for_stdin_eof(sys.stdin, deadline)

    # Wind down: the peer and the child both exit when their input closes.
    peer.stdin.close()
    os.close(control_write)
    for s in held:
        s.close()
    try:
        peer.wait(timeout=5)
    except subprocess.TimeoutExpired:
        peer.kill()
        peer.wait(timeout=5)
    end = time.monotonic() + 5
    while time.monotonic() < end:
        finished, _ = os.waitpid(child, os.WNOHANG)
        if finished:
            break
        time.sleep(0.05)
    else:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if len(sys.argv) >= 3 and sys.argv[1] == "--peer":
        run_peer(json.loads(sys.argv[2]))
    else:
        run_main()


if __name__ == "__main__":
    main()
