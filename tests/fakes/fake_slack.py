"""A fake of the Slack Web API, for tests: the real `slack_sdk` WebClient talks to it
(settings.BACKSTOP_SLACK_API_URL -> WebClient(base_url=...)).

It speaks the methods Backstop calls — chat.postMessage, chat.update, chat.postEphemeral,
conversations.open, conversations.history, users.lookupByEmail, users.info, usergroups.users.update —
reading arguments from the query string, a form body or a JSON body as the SDK sends them, checks the
bearer token, records every call and keeps the messages, so a test reads what a channel shows.

Faults: ``rate_limit(n, retry_after)`` answers the next n calls 429 with `Retry-After` (nothing done);
``hang_next(method)`` does the next call of that method, then holds the answer past the client's timeout.

Inbound requests are signed as Slack signs them: ``sign(secret, body, timestamp)``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


def sign(secret: str, body: bytes | str, timestamp: int | str) -> str:
    """`X-Slack-Signature` for this body and `X-Slack-Request-Timestamp`, as Slack computes it."""
    raw = body.encode() if isinstance(body, str) else body
    base = b"v0:" + str(timestamp).encode() + b":" + raw
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class FakeSlack:
    def __init__(self, *, token: str = "xoxb-test", host: str = "127.0.0.1", port: int = 0) -> None:
        self.token = token
        self.lock = threading.Lock()
        self.calls: list[dict[str, Any]] = []
        self.users: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, list[dict[str, Any]]] = {}
        self.usergroups: dict[str, list[str]] = {}
        self.ephemerals: list[dict[str, Any]] = []
        self._rate_limited = 0
        self._retry_after = 1
        self._hang: dict[str, float] = {}
        self._clock = 0.0
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True

    # --- control ---------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/api/"

    def start(self) -> FakeSlack:
        threading.Thread(target=self._server.serve_forever, name="fake-slack", daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add_user(self, user_id: str, email: str) -> None:
        with self.lock:
            self.users[user_id] = {"id": user_id, "name": email.split("@")[0], "profile": {"email": email}}

    def rate_limit(self, count: int, retry_after: int = 1) -> None:
        with self.lock:
            self._rate_limited, self._retry_after = count, retry_after

    def hang_next(self, method: str, seconds: float = 2.0) -> None:
        with self.lock:
            self._hang[method] = seconds

    # --- inspection ------------------------------------------------------------------------------
    def calls_to(self, method: str) -> list[dict[str, Any]]:
        with self.lock:
            return [c for c in self.calls if c["method"] == method]

    def messages(self, channel: str) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(m) for m in self.channels.get(channel, [])]

    def dm_channel(self, user_id: str) -> str:
        return "D" + user_id[1:]

    # --- behaviour -------------------------------------------------------------------------------
    def _next_ts(self) -> str:
        # Slack's ts is the posting time (seconds.microseconds), unique per channel.
        self._clock = max(time.time(), self._clock + 0.000001)
        return f"{self._clock:.6f}"

    def _do(self, method: str, args: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if method == "chat.postMessage":
            channel = str(args.get("channel", ""))
            if not channel.startswith(("C", "G", "D")):
                return 200, {"ok": False, "error": "channel_not_found"}
            message = {"ts": self._next_ts(), "text": args.get("text", ""), "blocks": args.get("blocks") or []}
            self.channels.setdefault(channel, []).append(message)
            return 200, {"ok": True, "channel": channel, "ts": message["ts"], "message": message}
        if method == "chat.update":
            for message in self.channels.get(str(args.get("channel", "")), []):
                if message["ts"] == args.get("ts"):
                    message["text"], message["blocks"] = args.get("text", ""), args.get("blocks") or []
                    return 200, {"ok": True, "channel": args["channel"], "ts": message["ts"]}
            return 200, {"ok": False, "error": "message_not_found"}
        if method == "chat.postEphemeral":
            self.ephemerals.append({"channel": args.get("channel"), "user": args.get("user"), "text": args.get("text")})
            return 200, {"ok": True, "message_ts": self._next_ts()}
        if method == "conversations.open":
            user = str(args.get("users", "")).split(",")[0]
            if user not in self.users:
                return 200, {"ok": False, "error": "user_not_found"}
            return 200, {"ok": True, "channel": {"id": self.dm_channel(user)}}
        if method == "conversations.history":
            oldest = float(args.get("oldest") or 0)
            found = [m for m in self.channels.get(str(args.get("channel", "")), []) if float(m["ts"]) >= oldest]
            return 200, {"ok": True, "messages": list(reversed(found)), "has_more": False}
        if method == "users.lookupByEmail":
            email = str(args.get("email", "")).lower()
            for user in self.users.values():
                if user["profile"]["email"].lower() == email:
                    return 200, {"ok": True, "user": user}
            return 200, {"ok": False, "error": "users_not_found"}
        if method == "users.info":
            user = self.users.get(str(args.get("user", "")))
            return 200, ({"ok": True, "user": user} if user else {"ok": False, "error": "user_not_found"})
        if method == "usergroups.users.update":
            users = args.get("users", "")
            ids = users if isinstance(users, list) else [u for u in str(users).split(",") if u]
            if not ids:
                return 200, {"ok": False, "error": "invalid_users"}
            self.usergroups[str(args.get("usergroup", ""))] = ids
            return 200, {"ok": True, "usergroup": {"id": args.get("usergroup"), "users": ids}}
        return 404, {"ok": False, "error": "unknown_method"}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(raw)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(raw)

            def _handle(self) -> None:
                split = urlsplit(self.path)
                method = split.path.removeprefix("/api/")
                args: dict[str, Any] = {k: v[0] for k, v in parse_qs(split.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if raw:
                    if "json" in (self.headers.get("Content-Type") or ""):
                        args.update(json.loads(raw))
                    else:
                        args.update({k: v[0] for k, v in parse_qs(raw.decode()).items()})
                for key in ("blocks", "users"):
                    if isinstance(args.get(key), str) and args[key].startswith("["):
                        args[key] = json.loads(args[key])
                authorized = self.headers.get("Authorization") == f"Bearer {fake.token}"
                with fake.lock:
                    call = {"method": method, "args": args, "at": time.time()}
                    fake.calls.append(call)
                    if not authorized:
                        call["status"] = 200
                        status, body, headers = 200, {"ok": False, "error": "invalid_auth"}, {}
                    elif fake._rate_limited > 0:
                        fake._rate_limited -= 1
                        call["status"] = 429
                        status, body = 429, {"ok": False, "error": "ratelimited"}
                        headers = {"Retry-After": str(fake._retry_after)}
                    else:
                        status, body = fake._do(method, args)
                        call["status"], headers = status, {}
                    hang = fake._hang.pop(method, 0.0)
                if hang:
                    time.sleep(hang)
                self._answer(status, body, headers)

            do_GET = _handle
            do_POST = _handle

        return Handler
