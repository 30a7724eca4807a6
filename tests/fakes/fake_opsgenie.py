"""A fake of Opsgenie's REST API v2 (read side: users, schedules, rotations, overrides, timeline,
escalations, integrations), serving a recorded account.

Checks `Authorization: GenieKey <key>`; pages lists with offset/limit and `paging.next`, as Opsgenie does.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit


class FakeOpsgenie:
    def __init__(self, account: dict, *, key: str = "genie-read-key", page_size: int = 2) -> None:
        self.account = account
        self.key = key
        self.page_size = page_size
        self.requests: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeOpsgenie:
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-opsgenie", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, path: str, query: dict[str, str]) -> tuple[int, Any]:
        parts = [p for p in path.split("/") if p]
        if parts[:1] != ["v2"]:
            return 404, {"message": "Not found", "took": 0.0, "requestId": "x"}
        parts = parts[1:]
        a = self.account
        if len(parts) == 1 and parts[0] in ("users", "schedules", "escalations", "integrations"):
            return self._page(path, a[parts[0]], query)
        if len(parts) == 3 and parts[0] == "schedules" and parts[2] in ("rotations", "overrides", "timeline"):
            data = a[parts[2]].get(parts[1])
            if data is None:
                return 404, {"message": "Schedule not found", "took": 0.0, "requestId": "x"}
            return 200, {"data": data, "took": 0.01, "requestId": "x"}
        return 404, {"message": "Not found", "took": 0.0, "requestId": "x"}

    def _page(self, path: str, items: list, query: dict[str, str]) -> tuple[int, Any]:
        offset = int(query.get("offset", 0))
        chunk = items[offset : offset + self.page_size]
        paging: dict[str, str] = {}
        if offset + self.page_size < len(items):
            paging["next"] = f"{self.base_url}{path}?{urlencode({'offset': offset + self.page_size})}"
        return 200, {"data": chunk, "paging": paging, "totalCount": len(items), "took": 0.01, "requestId": "x"}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                fake.requests.append(self.path)
                if self.headers.get("Authorization") != f"GenieKey {fake.key}":
                    status, body = 401, {"message": "Could not authenticate", "took": 0.0, "requestId": "x"}
                else:
                    status, body = fake.answer(url.path, {k: v[0] for k, v in parse_qs(url.query).items()})
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
