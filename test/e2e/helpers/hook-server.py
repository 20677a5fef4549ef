# A webhook receiver for the daemon tests: answers POSTs on 127.0.0.1:PORT and prints one line per
# record received ("record <json>"). Exits when stdin closes or after 120 s.
import http.server, json, sys, threading, time

port = int(sys.argv[1])
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        try:
            records = json.loads(body)
        except ValueError:
            self.send_response(400); self.end_headers(); return
        for r in records if isinstance(records, list) else [records]:
            print("record " + json.dumps(r), flush=True)
        self.send_response(200); self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Hook)
threading.Thread(target=server.serve_forever, daemon=True).start()
print("ready", flush=True)
end = time.time() + 120
while time.time() < end:
    if not sys.stdin.readline():
        break
server.shutdown()
