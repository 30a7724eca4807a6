"""The API reference pages render in a browser that can reach nothing but the installation."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest


@pytest.mark.parametrize(
    ("path", "rendered"),
    [
        ("/api/docs/", ".swagger-ui .opblock"),
        ("/api/redoc/", "[data-section-id^='tag/']"),
    ],
)
def test_api_reference_renders_without_leaving_the_installation(browser_at, path, rendered):
    browser = browser_at("desktop")
    own = urlsplit(browser.base_url).netloc
    elsewhere: list[str] = []

    def only_here(route) -> None:
        url = route.request.url
        if urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc != own:
            elsewhere.append(url)
            route.abort()
        else:
            route.continue_()

    browser.page.route("**/*", only_here)
    browser.goto(path)
    # Redoc parses the whole schema before it draws: give a loaded machine time.
    browser.page.locator(rendered).first.wait_for(state="visible", timeout=60_000)
    assert browser.page.locator(rendered).count() > 5
    assert elsewhere == []
    refused = [e for e in browser.console_errors if "Content Security Policy" in e]
    # Redoc's sidebar logo (cdn.redoc.ly) is the one request the policy is there to refuse.
    assert all("cdn.redoc.ly" in e for e in refused), refused
