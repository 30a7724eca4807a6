"""A fake of the Twilio REST API (Messages and Calls), for tests and the chaos run.

The real `twilio` SDK talks to it (settings.TWILIO_API_BASE_URL -> client.api.base_url). It records
every request and can inject faults:

* ``fail_rate``: HTTP 500 with Twilio's error JSON; nothing is created.
* ``timeout_rate``: the message/call IS created, then the answer is held for ``hang_seconds`` (longer
  than the client's timeout), the ambiguous case.
* ``plan(...)``: deterministic outcomes consumed first ("ok", "500", "400", "timeout", "timeout_lost"
  = hang without creating anything).

Standalone: ``python -m tests.fakes.fake_twilio --port 8765 --fail-rate 0.1 --timeout-rate 0.05
--record /tmp/twilio.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import secrets
import threading
import time
from collections import deque
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

_PATH_RE = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/(?P<kind>Messages|Calls)\.json$")
_RECORDING_RE = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Recordings/(?P<sid>RE[0-9a-fA-F]+)\.json$")


def _rfc2822(moment: datetime | None) -> str | None:
    return format_datetime(moment, usegmt=True) if moment else None


def _parse_iso(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = datetime.fromisoformat(value[:10])
        except ValueError:
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class FakeTwilio:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        fail_rate: float = 0.0,
        timeout_rate: float = 0.0,
        hang_seconds: float = 2.0,
        seed: int | None = 0,
        record_path: str | None = None,
    ) -> None:
        self.fail_rate = fail_rate
        self.timeout_rate = timeout_rate
        self.hang_seconds = hang_seconds
        self.rng = random.Random(seed)
        self.record_path = record_path
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.resources: dict[str, list[dict]] = {"Messages": [], "Calls": []}
        self._plan: deque[str] = deque()
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # --- control -------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeTwilio:
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-twilio", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def plan(self, *outcomes: str) -> None:
        """Queue deterministic outcomes for the next create requests."""
        with self.lock:
            self._plan.extend(outcomes)

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.resources = {"Messages": [], "Calls": []}
            self._plan.clear()

    # --- inspection ----------------------------------------------------------------------------
    def messages(self, to: str | None = None) -> list[dict]:
        with self.lock:
            return [m for m in self.resources["Messages"] if to is None or m["to"] == to]

    def calls(self, to: str | None = None) -> list[dict]:
        with self.lock:
            return [c for c in self.resources["Calls"] if to is None or c["to"] == to]

    def deleted_recordings(self) -> list[str]:
        with self.lock:
            return [r["sid"] for r in self.requests if r["method"] == "DELETE" and r.get("status") == 204]

    def create_requests(self, kind: str = "Messages") -> list[dict]:
        with self.lock:
            return [r for r in self.requests if r["method"] == "POST" and r["kind"] == kind]

    # --- behaviour -----------------------------------------------------------------------------
    def _outcome(self) -> str:
        with self.lock:
            if self._plan:
                return self._plan.popleft()
            r = self.rng.random()
        if r < self.fail_rate:
            return "500"
        if r < self.fail_rate + self.timeout_rate:
            return "timeout"
        return "ok"

    def _record(self, entry: dict) -> None:
        with self.lock:
            self.requests.append(entry)
            if self.record_path:
                with open(self.record_path, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(entry, default=str) + "\n")

    def _create(self, account: str, kind: str, form: dict[str, str]) -> dict:
        now = datetime.now(UTC)
        prefix = "SM" if kind == "Messages" else "CA"
        sid = prefix + secrets.token_hex(16)
        base = {
            "account_sid": account,
            "api_version": "2010-04-01",
            "sid": sid,
            "to": form.get("To", ""),
            "from": form.get("From", ""),
            "status": "queued",
            "direction": "outbound-api",
            "date_created": _rfc2822(now),
            "date_updated": _rfc2822(now),
            "price": None,
            "price_unit": "USD",
            "uri": f"/2010-04-01/Accounts/{account}/{kind}/{sid}.json",
            "subresource_uris": {},
            "_created": now,
            "_form": form,
        }
        if kind == "Messages":
            base.update(
                {
                    "body": form.get("Body", ""),
                    "date_sent": _rfc2822(now),
                    "error_code": None,
                    "error_message": None,
                    "messaging_service_sid": None,
                    "num_media": "0",
                    "num_segments": "1",
                }
            )
        else:
            base.update(
                {
                    "start_time": None,
                    "end_time": None,
                    "duration": None,
                    "answered_by": None,
                    "caller_name": None,
                    "forwarded_from": None,
                    "parent_call_sid": None,
                    "phone_number_sid": None,
                    "queue_time": "0",
                    "trunk_sid": None,
                    "to_formatted": form.get("To", ""),
                    "from_formatted": form.get("From", ""),
                    "annotation": None,
                    "group_sid": None,
                }
            )
        with self.lock:
            self.resources[kind].append(base)
        return base

    def _list(self, account: str, kind: str, query: dict[str, str]) -> dict:
        with self.lock:
            items = list(self.resources[kind])
        if "To" in query:
            items = [i for i in items if i["to"] == query["To"]]
        if "From" in query:
            items = [i for i in items if i["from"] == query["From"]]
        for key in ("DateSent>", "StartTime>", "DateSent>=", "StartTime>="):
            if key in query and (bound := _parse_iso(query[key])):
                items = [i for i in items if i["_created"] >= bound]
        items.sort(key=lambda i: i["_created"], reverse=True)  # newest first, like Twilio
        page_size = int(query.get("PageSize", 50))
        page = int(query.get("Page", 0))
        chunk = items[page * page_size : (page + 1) * page_size]
        path = f"/2010-04-01/Accounts/{account}/{kind}.json"
        base_query = {k: v for k, v in query.items() if k not in ("Page", "PageSize", "PageToken")}

        def uri(n: int) -> str:
            return path + "?" + urlencode({**base_query, "PageSize": page_size, "Page": n})

        has_next = (page + 1) * page_size < len(items)
        return {
            kind.lower(): [{k: v for k, v in i.items() if not k.startswith("_")} for i in chunk],
            "end": page * page_size + max(len(chunk) - 1, 0),
            "first_page_uri": uri(0),
            "next_page_uri": uri(page + 1) if has_next else None,
            "previous_page_uri": uri(page - 1) if page > 0 else None,
            "page": page,
            "page_size": page_size,
            "start": page * page_size,
            "uri": uri(page),
        }

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def _send_json(self, status: int, payload: dict) -> None:
                body = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout case)

            def _route(self):
                parts = urlsplit(self.path)
                match = _PATH_RE.match(parts.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
                return match, query

            def do_GET(self) -> None:
                match, query = self._route()
                entry = {"method": "GET", "path": self.path, "query": query, "at": time.time()}
                if not match:
                    entry["kind"] = None
                    fake._record(entry)
                    return self._send_json(404, {"code": 20404, "message": "Not found", "status": 404})
                entry["kind"] = match["kind"]
                fake._record(entry)
                self._send_json(200, fake._list(match["account"], match["kind"], query))

            def do_DELETE(self) -> None:
                """Recordings only: 204 for a recording not deleted before, 404 (Twilio's answer) after."""
                match = _RECORDING_RE.match(urlsplit(self.path).path)
                entry = {"method": "DELETE", "path": self.path, "kind": "Recordings", "at": time.time()}
                if match is None:
                    entry["status"] = 404
                else:
                    entry["sid"] = match["sid"]
                    outcome = fake._outcome()
                    gone = match["sid"] in fake.deleted_recordings()
                    entry["status"] = 500 if outcome == "500" else 404 if gone else 204
                fake._record(entry)
                if entry["status"] == 204:
                    try:
                        self.send_response(204)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    return None
                code = {404: 20404, 500: 20500}[entry["status"]]
                return self._send_json(entry["status"], {"code": code, "message": "x", "status": entry["status"]})

            def do_POST(self) -> None:
                match, query = self._route()
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                raw = body.decode(errors="replace")
                form_multi = parse_qs(raw, keep_blank_values=True)
                form = {k: v[-1] for k, v in form_multi.items()}
                entry = {"method": "POST", "path": self.path, "form": form, "at": time.time()}
                if not match:
                    entry["kind"] = None
                    fake._record(entry)
                    return self._send_json(404, {"code": 20404, "message": "Not found", "status": 404})
                kind = match["kind"]
                entry["kind"] = kind
                if len(body) < length:
                    # The client died mid-request (a killed worker): Twilio never acts on a request it
                    # did not receive whole.
                    entry["outcome"] = "truncated"
                    fake._record(entry)
                    self.close_connection = True
                    return None
                if not form.get("To"):
                    entry["outcome"] = "400"
                    fake._record(entry)
                    return self._send_json(
                        400, {"code": 21604, "message": "A 'To' phone number is required.", "status": 400}
                    )
                outcome = fake._outcome()
                entry["outcome"] = outcome
                if outcome == "500":
                    fake._record(entry)
                    return self._send_json(
                        500,
                        {
                            "code": 20500,
                            "message": "Internal Server Error",
                            "more_info": "https://www.twilio.com/docs/errors/20500",
                            "status": 500,
                        },
                    )
                if outcome == "400":
                    fake._record(entry)
                    return self._send_json(
                        400,
                        {
                            "code": 21211,
                            "message": f"The 'To' number {form.get('To')} is not a valid phone number.",
                            "more_info": "https://www.twilio.com/docs/errors/21211",
                            "status": 400,
                        },
                    )
                if outcome == "timeout_lost":
                    fake._record(entry)
                    time.sleep(fake.hang_seconds)
                    return self._send_json(500, {"code": 20500, "message": "late", "status": 500})
                resource = fake._create(match["account"], kind, form)
                entry["sid"] = resource["sid"]
                fake._record(entry)
                if outcome == "timeout":
                    time.sleep(fake.hang_seconds)
                self._send_json(201, {k: v for k, v in resource.items() if not k.startswith("_")})

        return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake Twilio REST API")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--timeout-rate", type=float, default=0.0)
    parser.add_argument("--hang-seconds", type=float, default=15.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--record", default=None, help="append every request as a JSON line")
    args = parser.parse_args(argv)
    fake = FakeTwilio(
        host=args.host,
        port=args.port,
        fail_rate=args.fail_rate,
        timeout_rate=args.timeout_rate,
        hang_seconds=args.hang_seconds,
        seed=args.seed,
        record_path=args.record,
    )
    print(f"fake Twilio listening on {fake.base_url}", flush=True)
    try:
        fake._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        fake._server.server_close()


if __name__ == "__main__":
    main()
