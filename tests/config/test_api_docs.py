"""/api/docs/ and /api/redoc/ need nothing beyond the installation: every script, style and icon is a
static file found by the staticfiles finders, and the Content-Security-Policy keeps the browser here."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.urls import reverse

DOC_PAGES = ["api-docs", "api-redoc"]


class _Resources(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href", "img": "src"}.get(tag)
        for name, value in attrs:
            if name == wanted and value:
                self.urls.append(value)


def _page(client, name: str) -> tuple[str, list[str], str]:
    response = client.get(reverse(name))
    assert response.status_code == 200
    html = response.content.decode()
    parser = _Resources()
    parser.feed(html)
    return html, parser.urls, response["Content-Security-Policy"]


@pytest.mark.parametrize("name", DOC_PAGES)
def test_doc_page_loads_only_static_files_of_this_installation(client, name):
    html, urls, _ = _page(client, name)
    assert not re.search(r"cdn|jsdelivr|unpkg|googleapis|gstatic", html, re.I)
    assert any(url.endswith(".js") for url in urls), urls
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{url} is not same-origin"
        if parts.path.startswith(f"/{settings.STATIC_URL.strip('/')}/"):
            relative = parts.path.removeprefix(f"/{settings.STATIC_URL.strip('/')}/")
            assert finders.find(relative), f"{url} is not a static file of this installation"
        else:  # Swagger UI's start-up script, served by the docs view itself
            assert client.get(url).status_code == 200, url


def test_swagger_start_up_script_is_a_same_origin_file_with_no_validator(client):
    _, urls, _ = _page(client, "api-docs")
    (init,) = [url for url in urls if not url.startswith("/static/")]
    script = client.get(init)
    assert script["Content-Type"].startswith("application/javascript")
    assert '"validatorUrl": null' in script.content.decode()


@pytest.mark.parametrize("name", DOC_PAGES)
def test_doc_page_policy_allows_this_origin_only(client, name):
    _, _, csp = _page(client, name)
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    for directive in ("img-src", "connect-src", "font-src", "style-src"):
        assert "http" not in directives[directive] and "*" not in directives[directive], directive
