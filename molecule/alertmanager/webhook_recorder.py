"""A webhook receiver for tests: answers every POST with 200 and appends it to a JSON-lines file."""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST, PORT, RECORD = sys.argv[1], int(sys.argv[2]), sys.argv[3]


class Recorder(BaseHTTPRequestHandler):
    def do_POST(self):  # http.server calls this name
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(RECORD, "a", encoding="utf-8") as record:
            record.write(json.dumps({"path": self.path, "body": body.decode("utf-8", "replace")}) + "\n")
        self.send_response(200)
        self.end_headers()


ThreadingHTTPServer((HOST, PORT), Recorder).serve_forever()
