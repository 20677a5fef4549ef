# A webhook receiver that keeps connections open (HTTP/1.1), on 127.0.0.1:PORT. Prints "ready",
# "conn PEERPORT" for each connection accepted, "record <json>" for each record received and
# "end PEERPORT HOW" when a connection ends (eof, or the error that ended it: aborted, reset).
# Exits when stdin closes or after 120 s.
import http.server, json, sys, threading, time

port = int(sys.argv[1])
out = threading.Lock()

def say(line):
    with out:
        print(line, flush=True)

class Hook(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def handle(self):
        peer = self.client_address[1]
        say(f"conn {peer}")
        how = "eof"
        try:
            super().handle()
        except ConnectionAbortedError:
            how = "aborted"
        except ConnectionResetError:
            how = "reset"
        except OSError as e:
            how = f"error {e.errno}"
        say(f"end {peer} {how}")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        try:
            records = json.loads(body)
        except ValueError:
            self.send_response(400); self.send_header("content-length", "0"); self.end_headers(); return
        for r in records if isinstance(records, list) else [records]:
            say("record " + json.dumps(r))
        self.send_response(200); self.send_header("content-length", "0"); self.end_headers()

    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Hook)
server.daemon_threads = True
threading.Thread(target=server.serve_forever, daemon=True).start()
say("ready")
end = time.time() + 120
while time.time() < end:
    if not sys.stdin.readline():
        break
server.shutdown()
