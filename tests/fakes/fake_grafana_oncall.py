"""A fake of Grafana OnCall's public API (/api/v1/, read side), serving a recorded organisation.

Checks the `Authorization: <token>` header, pages lists as OnCall does ({count, next, previous,
results} with a `next` URL), and answers final_shifts for the asked dates (clipped like OnCall).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from tests.fakes.vendor_api import FakeVendorApi


def _t(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class FakeGrafanaOnCall(FakeVendorApi):
    name = "fake-grafana-oncall"
    refusal = (401, {"detail": "Invalid token."})

    def __init__(self, account: dict, *, token: str = "oncall-token", page_size: int = 2) -> None:
        super().__init__(account, page_size=page_size)
        self.token = token

    def authorized(self, authorization: str | None) -> bool:
        return authorization == self.token

    def answer(self, path: str, multi: dict[str, list[str]]) -> tuple[int, Any]:
        query = {k: v[0] for k, v in multi.items()}
        parts = [p for p in path.split("/") if p]
        if parts[:2] != ["api", "v1"]:
            return 404, {"detail": "Not found."}
        parts = parts[2:]
        a = self.account
        lists = {
            "users": a["users"],
            "on_call_shifts": a["on_call_shifts"],
            "schedules": a["schedules"],
            "escalation_chains": a["escalation_chains"],
            "escalation_policies": a["escalation_policies"],
            "integrations": a["integrations"],
        }
        if len(parts) == 1 and parts[0] in lists:
            return self._page(path, lists[parts[0]], query)
        if len(parts) == 3 and parts[0] == "schedules" and parts[2] == "final_shifts":
            lo = datetime.fromisoformat(query["start_date"]).replace(tzinfo=UTC)
            hi = datetime.fromisoformat(query["end_date"]).replace(tzinfo=UTC) + timedelta(days=1)
            out = []
            for item in a["final_shifts"].get(parts[1], []):
                s, e = _t(item["shift_start"]), _t(item["shift_end"])
                if s < hi and e > lo:
                    clipped = {**item, "shift_start": max(s, lo).isoformat(), "shift_end": min(e, hi).isoformat()}
                    out.append(clipped)
            return 200, {"count": len(out), "next": None, "previous": None, "results": out}
        return 404, {"detail": "Not found."}

    def _page(self, path: str, items: list, query: dict[str, str]) -> tuple[int, Any]:
        page = int(query.get("page", 1))
        chunk = items[(page - 1) * self.page_size : page * self.page_size]
        more = page * self.page_size < len(items)
        nxt = f"{self.base_url}{path}?{urlencode({'page': page + 1})}" if more else None
        return 200, {"count": len(items), "next": nxt, "previous": None, "results": chunk}
