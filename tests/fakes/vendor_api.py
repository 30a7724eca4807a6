"""What the fakes of vendors' REST APIs share: a recorded account served read-only on the loopback, at
the network edge, so the real clients (the `pagerduty` package, requests) make real HTTP calls.

A subclass says which `Authorization` value it accepts, what a refusal looks like, and answers a GET
with `answer(path, query)`. Lists are paged small (`page_size`), so the clients' paging is exercised.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit


class FakeVendorApi:
    name = "fake-vendor"
    scheme = "http"
    refusal: tuple[int, Any] = (401, {"message": "Unauthorized"})

    def __init__(self, account: dict, *, page_size: int = 2) -> None:
        self.account = account
        self.page_size = page_size
        self.requests: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._server.serve_forever, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def authorized(self, authorization: str | None) -> bool:
        raise NotImplementedError

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        raise NotImplementedError

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                fake.requests.append(self.path)
                if not fake.authorized(self.headers.get("Authorization")):
                    status, body = fake.refusal
                else:
                    status, body = fake.answer(url.path, parse_qs(url.query))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
