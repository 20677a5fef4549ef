#!/usr/bin/env python3
"""
PID 1 of a private PID namespace (run under `unshare --pid --fork --mount-proc`), for tests that
need a PID to be taken over by another process on purpose. Reads one JSON command a line on stdin
and answers each with one JSON line on stdout:

  {"op": "spawn", "argv": [...], "out": FILE, "err": FILE}   -> {"pid": N}
  {"op": "listener", "name": NAME, "port": P}                -> {"pid": N} once it listens
      a process whose kernel name (comm) is NAME, listening on 127.0.0.1:P
  {"op": "signal", "pid": N, "signal": "SIGSTOP"}            -> {"ok": true}
  {"op": "end", "pid": N}                                    -> {"ok": true} once it is reaped
  {"op": "reuse", "pid": N, "argv": [...]}                   -> {"pid": M}
      starts argv as the namespace's next process after setting ns_last_pid to N - 1, so that
      M == N unless something else in the namespace started a process in between
  {"op": "alive", "pid": N}                                  -> {"alive": bool, "comm": NAME|null}
  {"op": "wait", "pid": N}                                   -> {"code": C} once it has exited

Every process it starts is its child, so `end` and `alive` see exits exactly (waitpid) and a PID
is only free again once this process has reaped it. When stdin closes it exits, and the kernel
ends everything else in the namespace with it.
"""
import json
import os
import signal
import subprocess
import sys

children = {}


def answer(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().rstrip("\n")
    except OSError:
        return None


LISTENER = """
import ctypes, socket, sys, time
ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[2])))
s.listen()
sys.stdout.write("ready\\n")
sys.stdout.flush()
time.sleep(600)
"""


def main():
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        try:
            if op == "spawn":
                out = open(cmd["out"], "wb")
                err = open(cmd["err"], "wb")
                p = subprocess.Popen(cmd["argv"], stdin=subprocess.DEVNULL, stdout=out, stderr=err)
                out.close()
                err.close()
                children[p.pid] = p
                answer({"pid": p.pid})
            elif op == "listener":
                p = subprocess.Popen(
                    ["/usr/bin/python3", "-c", LISTENER, cmd["name"], str(cmd["port"])],
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                )
                children[p.pid] = p
                if p.stdout.readline() != b"ready\n":
                    answer({"error": f"listener {cmd['name']} did not start"})
                else:
                    answer({"pid": p.pid})
            elif op == "signal":
                os.kill(cmd["pid"], getattr(signal, cmd["signal"]))
                answer({"ok": True})
            elif op == "end":
                p = children.pop(cmd["pid"])
                p.kill()
                p.wait()
                answer({"ok": True})
            elif op == "reuse":
                with open("/proc/sys/kernel/ns_last_pid", "w") as f:
                    f.write(str(cmd["pid"] - 1))
                p = subprocess.Popen(cmd["argv"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
                children[p.pid] = p
                answer({"pid": p.pid})
            elif op == "alive":
                p = children.get(cmd["pid"])
                alive = p is not None and p.poll() is None
                answer({"alive": alive, "comm": comm(cmd["pid"]) if alive else None})
            elif op == "wait":
                answer({"code": children[cmd["pid"]].wait(timeout=30)})
            else:
                answer({"error": f"unknown op {op}"})
        except Exception as e:  # the test shows the message; this process goes on
            answer({"error": f"{op}: {e}"})


main()
