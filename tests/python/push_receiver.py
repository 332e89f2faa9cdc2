"""A push endpoint as a Python plugin developer would write one: every request is checked
with the Standard Webhooks reference library (`standardwebhooks`), then answered 204, or
400 when it does not verify. The signing secret is read from the file given (the test
writes it once the plugin is registered); each request is appended to the log file as a
JSON line. Prints `listening <port>` once it serves. Used by tests/tests/e2e/push_delivery.rs.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

SECRET_FILE, LOG_FILE = sys.argv[1], sys.argv[2]


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k: v for k, v in self.headers.items()}
        entry = {"id": headers.get("webhook-id")}
        try:
            with open(SECRET_FILE) as f:
                secret = f.read().strip()
            event = Webhook(secret).verify(body, headers)
            entry.update(ok=True, type=event["type"], subject=event["subject"])
            status = 204
        except (WebhookVerificationError, OSError, ValueError, KeyError) as e:
            entry.update(ok=False, error=repr(e))
            status = 400
        with open(LOG_FILE, "a") as f:
            f.write(json.dumps(entry) + "\n")
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
print(f"listening {server.server_address[1]}", flush=True)
server.serve_forever()
