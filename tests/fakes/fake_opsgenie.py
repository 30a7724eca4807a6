"""A fake of Opsgenie's REST API v2 (read side: users, schedules, rotations, overrides, timeline,
escalations, integrations), serving a recorded account.

Checks `Authorization: GenieKey <key>`; pages lists with offset/limit and `paging.next`, as Opsgenie does.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from tests.fakes.vendor_api import FakeVendorApi


class FakeOpsgenie(FakeVendorApi):
    name = "fake-opsgenie"
    refusal = (401, {"message": "Could not authenticate", "took": 0.0, "requestId": "x"})

    def __init__(self, account: dict, *, key: str = "genie-read-key", page_size: int = 2) -> None:
        super().__init__(account, page_size=page_size)
        self.key = key

    def authorized(self, authorization: str | None) -> bool:
        return authorization == f"GenieKey {self.key}"

    def answer(self, path: str, multi: dict[str, list[str]]) -> tuple[int, Any]:
        query = {k: v[0] for k, v in multi.items()}
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
