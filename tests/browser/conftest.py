"""Browser journeys: Playwright's sync API driving Debian's chromium against pytest-django's live_server.

Chromium runs as root on a machine without network, so it needs --no-sandbox and every kind of
background networking switched off. Each test gets a fresh profile directory. Screenshots go to
test-artifacts/screenshots/ (gitignored) so a person can look at them.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make between
# browser steps are ordinary blocking calls, not async code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_path() -> str | None:
    """BACKSTOP_CHROMIUM when set (and only it), else Debian's chromium."""
    chosen = os.environ.get("BACKSTOP_CHROMIUM")
    for candidate in [chosen] if chosen else [shutil.which("chromium"), "/usr/bin/chromium"]:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="session")
def playwright_sync():
    if chromium_path() is None:
        pytest.skip(
            "No chromium binary found (apt-get install chromium, or set BACKSTOP_CHROMIUM): browser tests skipped."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


class Browser:
    """One fresh Chromium profile at one viewport, with helpers the journeys share."""

    def __init__(self, context, base_url: str, viewport: str, test_name: str) -> None:
        self.context = context
        self.page = context.pages[0] if context.pages else context.new_page()
        self.base_url = base_url
        self.viewport = viewport
        self.test_name = test_name
        self.console_errors: list[str] = []
        self.page.on("console", lambda msg: msg.type == "error" and self.console_errors.append(msg.text))
        self.page.on("pageerror", lambda exc: self.console_errors.append(str(exc)))

    def goto(self, path: str):
        return self.page.goto(self.base_url + path)

    def sign_in(self, email: str, password: str) -> None:
        self.goto("/accounts/login/")
        self.page.get_by_label(re.compile("e-?mail", re.I)).first.fill(email)
        self.page.get_by_label(re.compile("password", re.I)).first.fill(password)
        self.page.get_by_role("button", name=re.compile("sign in", re.I)).click()
        self.page.wait_for_load_state()

    def shot(self, name: str) -> Path:
        """Save a full-page screenshot and check the page does not scroll sideways."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.test_name}-{name}-{self.viewport}.png"
        self.page.screenshot(path=str(path), full_page=True)
        overflow = self.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{name} ({self.viewport}) scrolls sideways by {overflow}px"
        return path


@pytest.fixture
def browser_at(playwright_sync, live_server, tmp_path, request) -> Iterator[Callable[[str], Browser]]:
    """browser_at("phone") / browser_at("desktop"): a Chromium window on the live server."""
    contexts = []

    def make(viewport: str = "desktop") -> Browser:
        profile = tmp_path / f"profile-{viewport}-{len(contexts)}"
        context = playwright_sync.chromium.launch_persistent_context(
            str(profile),
            executable_path=chromium_path(),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=VIEWPORTS[viewport],
            locale="en-GB",
            timezone_id="Europe/Berlin",
            is_mobile=viewport == "phone",
            has_touch=viewport == "phone",
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        return Browser(context, live_server.url, viewport, request.node.name.split("[")[0].removeprefix("test_"))

    yield make
    for context in contexts:
        context.close()
