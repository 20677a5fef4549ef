#!/usr/bin/python3
"""Loopback traffic for the tests and the benchmarks, one mode a run. Run it inside a network
namespace the caller made; nothing leaves its loopback.

Usage: traffic.py MODE ARGS...

Servers (every mode that listens) serve each connection by what it sends: a line is answered
"ok\\n"; a "p" makes the server close first (the peer closes); anything else is held until the
client closes or resets it. A forked server ends with its parent (a pipe it watches, and
PR_SET_PDEATHSIG) and after the lifetime.

  listen  NAME HOST PORT
          Names itself NAME (the kernel's comm, PR_SET_NAME), listens on HOST:PORT (IPv6 when
          HOST has a ":"), prints "ready PID", then serves every connection at once in this
          process. Prints nothing more; exits when stdin closes (at most 5 minutes).
  connect NAME HOST PORT COUNT BIND_HOST FIRST_PORT PATTERN [HOLD_MS]
  connect NAME HOST PORT COUNT BIND_HOST FIRST_PORT churn RATE [BALLAST]
          Short-lived TCP connections under NAME (named before any socket) to a listen server:
          connects COUNT times from BIND_HOST (local port FIRST_PORT + i, or any when FIRST_PORT
          is 0) to HOST:PORT and prints one JSON line {"pid", "connections": [{"local": [ADDR,
          PORT], "remote": [ADDR, PORT], "mode": "normal"|"reset"|"peer"|"held"}]}: the addresses
          each connection saw (getsockname, getpeername) and how it ended.
          mixed      each held HOLD_MS (default 1) ms after its first byte; odd ones reset
                     (SO_LINGER 0), the others closed normally, every fourth by the server first
                     (this side closes once it reads the end of stream). Exits after printing.
          alternate  as mixed, but this side closes every even one normally: no peer closes.
          burst      no pause anywhere; even connections stay open, odd ones are reset at once.
          reuse      every connection from FIRST_PORT itself, each reset at once but the last,
                     which stays open. burst and reuse print, then hold the open ones until
                     stdin closes (at most 5 minutes).
          churn      a steady stream of every kind, for counting what a watcher reports of each:
                     RATE connections a second on a fixed schedule, connection i held (i % 4 ==
                     0: until stdin closes), reset at once after its first byte (1), closed
                     normally after it (2), or closed by the server first (3). The first BALLAST
                     connections (default 0) are all held and made as fast as they can be, then
                     it prints "ready" and waits for a line on stdin before the others: many
                     sockets make each dump of the socket table longer, and the sensor's records
                     more likely to arrive while one is taken, and made before a watcher starts
                     they are in its first look, not a burst of changes that could overflow its
                     buffers. Prints, then holds until stdin closes (at most 5 minutes).
  hold    --connections N [--per-worker M] [--base-port P] [--lifetime S]
          N established connections, split over W = ceil(N / M) forked workers (one process may
          not be allowed 2N descriptors: raising the hard RLIMIT_NOFILE needs CAP_SYS_RESOURCE).
          M defaults to what the hard limit allows (at most 8000). Worker w listens on
          127.0.0.1:(P + w) (P default 20000) and connects to itself from 127.0.0.2..65
          (IP_BIND_ADDRESS_NO_PORT: the kernel picks the port per 4-tuple, so ephemeral ports do
          not run out): 2N sockets plus W listeners, all SO_LINGER 0 (closing leaves no
          TIME_WAIT). Prints "ready N SOCKETS WORKERS", then waits until stdin closes.
  churn   [--port P] [--close fin|rst] [--sources N] [--lifetime S]
          A server child on 127.0.0.1:P (default 18080). Prints "ready P SERVERPID", then obeys
          stdin: "start R" makes R connections a second on a fixed schedule (from 127.0.0.(2 + i
          % N), N default 64, send one line, read the answer, close: normally, leaving 60 s of
          TIME_WAIT as on a real server, or with a reset); slots more than a second behind are
          dropped and counted late. "mark" answers "mark OK FAILED LATE"; "stop" stops and
          answers "stopped OK FAILED LATE FIRSTERROR".
  beacon  --port P [--name NAME] [--lifetime S]
          Names itself NAME (default sw-beacon; the server child on 127.0.0.1:P NAME-srv) before
          any socket, prints "ready P SERVERPID" and obeys stdin: "hold" opens one connection
          and keeps it ("held LOCALPORT"); "burst N SEED" makes N connections one after another,
          each open 1-5 ms, closed normally (fin), with a reset (rst) or by the server (peer),
          0-5 ms apart, and prints {"pid", "ms", "conns": [{"port", "mode", "holdMs"}]}; "quit"
          exits. It lives on after its connections, so a watcher can still find it by its PID.
  victim  [--port 25] [--samples N] [--gap-max S] [--timeout S] [--seed N] [--name NAME] [--lifetime S]
          Named NAME (default sw-victim, not a mail server's name; the server child NAME-sink,
          which holds every connection and resets it when it ends). Prints "ready P SINKPID",
          waits for "go", then N (default 200) times: sleeps uniform [0, gap-max] (default 1),
          connects, and blocks in recv() until it fails (the daemon destroyed the socket),
          returns EOF, or the timeout (default 5) passes; prints {"i", "port", "connectWallMs",
          "latencyMs" (monotonic, connect returned -> recv ended), "result", "gapMs"}. Then
          "done N". "quit" or EOF on stdin stops it.
  soak    CONFIG_JSON
          The soak and fault tests' traffic: a steady stream of new connections, some of which
          smtp-guard must close and some look-alikes it must leave alone, with every
          connection's fate written down so that missed and wrong closes can be counted exactly.
          One server child "soak-server" listens on 127.0.0.1:25, [::1]:25, 127.0.0.1:2525,
          127.0.0.1:8025 and, with "public", PUBLIC:443. CONFIG_JSON (every key optional):
            out         path prefix of the result files (default /tmp/soak-traffic); each
                        generator process writes OUT.NAME.ndjson
            churnRate   short connections a second to 127.0.0.1:8025 (connect, one line each
                        way, close) from "soak-churn"
            churnClose  "fin" (the client closes first: 60 s of TIME_WAIT each, as on a real
                        server) or "rst" (SO_LINGER 0: no TIME_WAIT)
            churnTimeout  seconds a short connection may wait for its answer before it fails
                        (default 30); after "stop", how long connections in flight are followed
                        to their outcome
            classRate   connections a second of each held class below (default 2)
            hold        seconds a look-alike is held before it is checked and closed (default 3)
            closeDeadline  seconds a connection that must be closed waits for it (default 10)
            public      an address on lo of this namespace that counts as public (e.g.
                        198.51.100.7), or null; "sw-fetch" then connects to it on port 443 at
                        classRate and holds each
            forkRate    short-lived processes a second from "soak-forker" (default 0): each
                        ("soak-child") connects to 127.0.0.1:8025 and exits 0 to 40 ms later
                        without closing anything (every tenth also listens on a port of its own
                        for 0.3 to 0.9 s first), so that processes keep vanishing while /proc
                        is being read
            lifetime    hard bound in seconds for every process (default 3700, at most 14400)
            classes     which held classes run (default all of them)
          Held classes (kind: process name, source -> target, and what smtp-guard must do):
            must-close  curl-25      curl     127.0.0.10 -> 127.0.0.1:25   ESTABLISHED, not a mail server
            must-close  curl-25-v6   curl     [::1] -> [::1]:25             the same over IPv6
            must-close  eximx-25     eximx    127.0.0.11 -> 127.0.0.1:25   like a mail server's name, not one
            keep        exim4-25     exim4    127.0.0.12 -> 127.0.0.1:25   a mail server
            keep        postfix-25   postfix  127.0.0.13 -> 127.0.0.1:25   a mail server
            keep        curl-2525    curl     127.0.0.14 -> 127.0.0.1:2525 another port
            keep        curl-udp-25  curl     udp 127.0.0.15 -> 127.0.0.1:25   UDP, not TCP
            keep        (the server's own accepted side of every port-25 connection: local port 25)
            public      public-443   sw-fetch 127.0.0.1 -> PUBLIC:443  (outbound-allowlist alerts on each)
          One JSON line per held connection: {"cls", "kind", "name", "proto", "family", "laddr",
          "lport", "raddr", "rport", "t0" (wall ms when connect returned), "t1" (wall ms of the
          outcome), "result" ("aborted", "reset", "eof", "alive", "timeout", "connect-failed
          ERRNO"), "ms"} (for "connect-failed": "t0" when connect was called, "lport" the port
          bind took, "ms" its duration), and every 5 s {"cls": "progress", "gen", "t", ...} per
          generator; a final {"cls": "summary", "gen", ...} when the generator ends (for the
          short connections: "started", "ok", "failed", "stopped" (still unanswered churnTimeout
          after "stop"), "errors" by reason, "firstError", "slowestMs" and "slow" (answered after
          more than a second), "late").
          On stdout: "ready SERVERPID" once every listener is up and the generators run; "stop"
          on stdin stops new connections, lets every one in flight (held and short) reach its
          outcome, and prints "finished" when every generator has written its results; EOF on
          stdin stops everything at once (exit 1).

hold, churn, beacon and victim exit by themselves after --lifetime seconds (default 600, at most
3600), soak after its "lifetime"; listen and connect after at most 5 minutes of waiting.
"""

import os
import sys

# Run from the source tree, often as root: no __pycache__ left beside the sources.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import MODE, fail  # noqa: E402
from loopback import MODES as LOOPBACK_MODES  # noqa: E402
from named import connect_mode, listen_mode  # noqa: E402
from soak import soak  # noqa: E402

MODES = {"listen": listen_mode, "connect": connect_mode, **LOOPBACK_MODES, "soak": soak}

if __name__ == "__main__":
    if MODE not in MODES:
        fail("usage: traffic.py %s ARGS... (see the top of traffic.py)" % "|".join(MODES))
    MODES[MODE](sys.argv[2:])
