"""A bank's webhook receiver: docs/monitoring.md, "A receiver, for banks" (the same code)."""

import hashlib
import hmac
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = os.environ.get("WEBHOOK_SECRET", "")  # the webhookSecret of createWatchlist
# The ids already processed. In production: a table with the id as primary key, written
# in the same transaction as what handle() does.
seen: set[str] = set()
seen_lock = threading.Lock()


def verify(secret: str, body: bytes, signature: str | None) -> bool:
    """True when X-Signature-256 is sha256=<hex HMAC-SHA256 of the raw body>."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(f"sha256={digest}".encode(), (signature or "").encode())


def handle(change: dict) -> None:
    """Your work: e.g. open a review of the loan when a borrower is LISTED."""
    print(change["id"], change["kind"], change["uscc"], change["status"])


class WebhookHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)  # the raw bytes, verified before parsing
        if not verify(SECRET, body, self.headers.get("X-Signature-256")):
            self.send_response(401)
            self.end_headers()
            return
        change = json.loads(body)
        with seen_lock:  # deduplicate by id: the same change may come more than once
            if change["id"] not in seen:
                handle(change)
                seen.add(change["id"])
        self.send_response(204)  # any 2xx: delivered; anything else is sent again
        self.end_headers()


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", 8080), WebhookHandler).serve_forever()
