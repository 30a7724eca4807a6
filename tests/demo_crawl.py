"""Crawl the portal signed in as each demo role and report every page that fails.

From the navigation it follows every same-origin link (`href`), every htmx `hx-get` (sent with the
`HX-Request` header, with its `hx-vals` and its own input value) and every GET form (its defaults, each
option of each select, a few probe strings in each empty text field), breadth first, at most
`max_pages` requests per role and `PER_SHAPE` per URL shape (the URL with its numbers blanked, so a
calendar's "next month" or a long pager cannot eat the budget). It never sends a POST beyond the
sign-in, and skips sign-out, the admin, downloads and anything that revokes, rotates or deletes.

A page fails when it answers 5xx, renders a Django error page or traceback, sends a signed-in user back
to the sign-in page, or when a link or hx-get found on a page answers 404.

Two callers: tests/sqlite/test_demo_crawl.py on PostgreSQL (the test database with the demo seed), and
`python -m tests.demo_crawl` under config.settings.local on the SQLite file `bin/run` prepares, where it
prints the result as JSON.
"""

from __future__ import annotations

import json
import re
import sys
from collections import deque
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

DEMO_PASSWORD = "backstop-demo"
ROLES = {
    "staff": "staff@example.com",
    "manager": "maria@example.com",
    "engineer": "jonas@example.com",
    "viewer": "viewer@example.com",
}
# The main pages, in case a role's navigation leaves one out, and pages no page links to (a team's
# handover note and log, the account's password and two-factor pages). 4xx is fine here, never 5xx.
SEEDS = (
    "/",
    "/incidents/",
    "/schedule/",
    "/teams/",
    "/insights/",
    "/profile/",
    "/outbox/",
    "/calls/",
    "/api/docs/",
    "/rosters/teams/payments/handover-note/",
    "/rosters/teams/platform/handovers/",
    "/accounts/password/change/",
    "/accounts/email/",
    "/accounts/2fa/",
    "/accounts/2fa/totp/activate/",
)
SKIP = re.compile(
    r"logout|signout|/admin/|delete|revoke|remove|rotate|recording|/static/|/media/|\.ics\b|/ical/|csv"
    r"|/api/schema/|/twilio/|^/integrations/"
)
PROBES = ("pay", "%_'\"<", "99999999999999999999999")
PER_SHAPE = 8
ERROR_MARKERS = (
    "Traceback (most recent call last)",
    'id="traceback"',
    "Exception Value:",
    "<title>Server Error",
    "Server Error (500)",
)
# Pages with ids each role must reach, not only the lists: (name, path pattern, roles).
DETAIL_KINDS = (
    ("incident", r"^/incidents/\d+/$", ("staff", "manager", "engineer", "viewer")),
    ("team", r"^/teams/(?!new/|options/)[\w-]+/$", ("staff", "manager", "engineer", "viewer")),
    ("rotation", r"^/rotations/\d+/edit$", ("staff", "manager")),
    ("policy", r"^/policies/\d+/edit$", ("staff", "manager")),
    ("integrations", r"^/teams/[\w-]+/integrations/$", ("staff", "manager", "engineer", "viewer")),
    ("integration", r"^/teams/[\w-]+/integrations/\d+/$", ("staff", "manager")),
    ("call", r"^/calls/\d+/recording$", ("staff",)),  # a download: found on the call log, never fetched
    ("phone line", r"^/calls/lines/\d+/$", ("staff",)),
    ("customer", r"^/calls/directory/\d+/$", ("staff",)),
)


@dataclass(frozen=True)
class Target:
    url: str  # path and query
    htmx: bool
    kind: str  # seed, link, htmx, form, redirect
    via: str  # the page it was found on


@dataclass
class RoleCrawl:
    role: str
    email: str
    requests: int = 0
    visited: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)

    def reached(self, pattern: str) -> list[str]:
        return [u for u in self.visited + self.skipped if re.match(pattern, urlsplit(u).path)]


class _Page(HTMLParser):
    """Where a browser could go from this page with a GET: links, hx-gets and GET forms."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.targets: list[tuple[str, bool, str]] = []  # url, htmx, kind
        self._form: dict | None = None
        self._select: list | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if a.get("href") and tag != "link":
            self.targets.append((a["href"], False, "link"))
        if tag == "form":
            if a.get("method", "get").lower() == "get":
                self._form = {"action": a.get("action", ""), "htmx": a.get("hx-get"), "fields": []}
            return
        if a.get("hx-get") and tag != "form":
            self._hx_get(a)
        if self._form is None or not a.get("name") or "disabled" in a:
            return
        name = a["name"]
        if tag == "input":
            kind = a.get("type", "text").lower()
            if kind in ("submit", "button", "image", "reset", "file"):
                return
            if kind in ("checkbox", "radio"):
                self._form["fields"].append((name, kind, a.get("value", "on"), "checked" in a))
            else:
                self._form["fields"].append((name, kind, a.get("value", ""), True))
        elif tag == "select":
            self._select = [name, [], None]
        elif tag == "option" and self._select is not None:
            self._select[1].append(a.get("value", ""))
            if "selected" in a:
                self._select[2] = a.get("value", "")
        elif tag == "textarea":
            self._form["fields"].append((name, "text", "", True))

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self._select is not None and self._form is not None:
            name, options, chosen = self._select
            self._form["fields"].append(
                (name, "select", options, chosen if chosen is not None else (options[0] if options else ""))
            )
            self._select = None
        elif tag == "form" and self._form is not None:
            self._submissions(self._form)
            self._form = None

    def _hx_get(self, a: dict[str, str]) -> None:
        url = a["hx-get"]
        params: dict[str, str] = {}
        try:
            vals = json.loads(a.get("hx-vals", "") or "{}")
            params.update({k: str(v) for k, v in vals.items()} if isinstance(vals, dict) else {})
        except ValueError:
            pass  # "js:" expressions: the bare URL still goes out
        self.targets.append((_with_query(url, params), True, "htmx"))
        if a.get("name"):
            for value in (a.get("value", ""), *PROBES):
                self.targets.append((_with_query(url, {**params, a["name"]: value}), True, "form"))

    def _submissions(self, form: dict) -> None:
        defaults: list[tuple[str, str]] = []
        variants: list[tuple[str, str]] = []
        for name, kind, value, on in form["fields"]:
            if kind == "select":
                defaults.append((name, on))
                variants += [(name, option) for option in value if option != on]
            elif kind in ("checkbox", "radio"):
                if on:
                    defaults.append((name, value))
                else:
                    variants.append((name, value))
            else:
                defaults.append((name, value))
                if not value:
                    variants += [(name, probe) for probe in PROBES]
        submissions = [defaults]
        for name, value in variants:
            changed = [(k, value if k == name else v) for k, v in defaults]
            submissions.append(changed if name in dict(defaults) else [*defaults, (name, value)])
        for fields in submissions:
            for htmx in (False, True) if form["htmx"] else (False,):
                url = form["htmx"] if htmx else form["action"]
                self.targets.append(((url or "") + "?" + urlencode(fields), htmx, "form"))


def _with_query(url: str, params: dict[str, str]) -> str:
    if not params:
        return url
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True)) | params
    return parts._replace(query=urlencode(query)).geturl()


def _shape(target: Target) -> tuple[str, bool]:
    return re.sub(r"\d+", "N", target.url), target.htmx


def _error_page(body: str) -> str | None:
    return next((marker for marker in ERROR_MARKERS if marker in body), None)


def sign_in(client, email: str, password: str = DEMO_PASSWORD) -> None:
    """Through allauth's form, as a person would; raises when the portal does not let them in."""
    client.get("/accounts/login/")
    response = client.post("/accounts/login/", {"login": email, "password": password})
    if response.status_code != 302 or "/accounts/" in response.get("Location", ""):
        raise AssertionError(f"sign-in as {email} failed: {response.status_code} {response.get('Location', '')}")


def crawl(client, *, role: str, email: str, max_pages: int = 300) -> RoleCrawl:
    """Crawl as an already signed-in client (django.test.Client)."""
    result = RoleCrawl(role=role, email=email)
    todo: deque[Target] = deque(Target(url, False, "seed", "") for url in SEEDS)
    queued = {(t.url, t.htmx) for t in todo}
    shapes: dict[tuple[str, bool], int] = {}
    while todo and result.requests < max_pages:
        target = todo.popleft()
        shape = _shape(target)
        if shapes.get(shape, 0) >= PER_SHAPE:
            continue
        shapes[shape] = shapes.get(shape, 0) + 1
        result.requests += 1
        headers = {"HX-Request": "true", "HX-Current-URL": "http://testserver" + target.via} if target.htmx else {}
        response = client.get(target.url, headers=headers)
        label = f"{'hx-get ' if target.htmx else ''}{target.url}" + (f" (from {target.via})" if target.via else "")
        status = response.status_code
        result.statuses[str(status)] = result.statuses.get(str(status), 0) + 1
        result.visited.append(target.url)
        content_type = response.get("Content-Type", "")
        streaming = getattr(response, "streaming", False)
        body = "" if streaming else response.content.decode(errors="replace")
        if status >= 500:
            result.failures.append(f"{status} {label}")
        elif status == 404 and target.kind in ("link", "htmx", "redirect"):
            result.failures.append(f"404 (broken link) {label}")
        elif (marker := _error_page(body)) is not None:
            result.failures.append(f"{status} renders a Django error ({marker!r}) {label}")
        found: list[tuple[str, bool, str]] = []
        if status in (301, 302, 303, 307, 308):
            location = response.get("Location", "")
            if "/accounts/login/" in location:
                result.failures.append(f"{status} sent back to sign-in {label}")
            found.append((location, target.htmx, "redirect"))
        elif "html" in content_type and "attachment" not in response.get("Content-Disposition", ""):
            page = _Page()
            page.feed(body)
            found = page.targets
        for href, htmx, kind in found:
            parts = urlsplit(urljoin("http://testserver" + target.url, href))
            if parts.scheme not in ("http", "https") or parts.netloc != "testserver":
                continue
            url = parts.path + ("?" + parts.query if parts.query else "")
            if SKIP.search(url):
                if url not in result.skipped:
                    result.skipped.append(url)
                continue
            if (url, htmx) not in queued:
                queued.add((url, htmx))
                todo.append(Target(url, htmx, kind, target.url))
    return result


def missing_details(results: list[RoleCrawl]) -> list[str]:
    """The kinds of id'd pages a role should have reached and did not."""
    missing = []
    for result in results:
        for name, pattern, roles in DETAIL_KINDS:
            if result.role in roles and not result.reached(pattern):
                missing.append(f"{result.role}: no {name} page")
    return missing


def demo_activity() -> int:
    """What a minute of the running demo adds: the due pages delivered to the outbox (the worker's job)
    and a voicemail on the emergency line (the staff's call simulator). Returns the call's incident id."""
    from datetime import UTC, datetime, timedelta

    from escalations.delivery.deliver import pages_deliver
    from escalations.models import Page, PhoneLine
    from escalations.phone.simulator import call_simulate

    due = Page.objects.filter(status=Page.Status.PENDING, due_at__lte=datetime.now(UTC) + timedelta(seconds=5))
    pages_deliver(page_ids=list(due.values_list("pk", flat=True)))
    record = call_simulate(
        line=PhoneLine.objects.get(number="+15550100999"),
        from_number="+15550142001",
        digit="1",
        transcript="Our checkout is down, customers cannot pay.",
        duration=14,
    )
    assert record is not None and record.incident_id is not None, record
    return record.incident_id


def main(argv: list[str]) -> int:
    """Crawl the database the settings name (bin/run's SQLite file); print the results as JSON."""
    import django

    django.setup()
    from django.test import Client

    max_pages = int(argv[0]) if argv else 300
    call_incident = demo_activity()
    results = []
    for role, email in ROLES.items():
        client = Client(raise_request_exception=False)
        sign_in(client, email)
        results.append(crawl(client, role=role, email=email, max_pages=max_pages))
    print(json.dumps({"call_incident": call_incident, "results": [asdict(r) for r in results]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
