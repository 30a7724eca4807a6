"""A webhook receiver on 127.0.0.1, for tests: records every POST (headers, raw body, the answer given)
and answers 500 while `failing` is set, 200 otherwise. `on_request(headers, body)` runs inside the
request, before the answer (to look at the database while the sender waits)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int


class WebhookReceiver:
    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.failing = False
        self.status_when_ok = 200
        self.redirect_to: str | None = None
        self.on_request: Callable[[dict[str, str], bytes], None] | None = None
        self.received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                if receiver.on_request is not None:
                    receiver.on_request(headers, body)
                status = receiver.status_now()
                with receiver._lock:
                    receiver.received.append(Received(self.path, headers, body, status))
                self.send_response(status)
                if status == 307:
                    self.send_header("Location", receiver.redirect_to or "/")
                answer = b'{"ok": false}' if status >= 300 else b'{"ok": true}'
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def status_now(self) -> int:
        if self.redirect_to:
            return 307
        return 500 if self.failing else self.status_when_ok

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/hooks/backstop?team=payments"

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def requests(self) -> list[Received]:
        with self._lock:
            return list(self.received)
