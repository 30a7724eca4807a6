"""The dead man's switch: ping an outside URL only while Backstop can page.

Services such as healthchecks.io, Cronitor or Dead Man's Snitch page someone when an expected ping does
not arrive. Beat runs `deadman_run` every minute on the `periodic` queue; it pings only when the
database answers, the escalation sweep ran recently and a worker consumes both paging queues. So the
pings stop when any of those fail, and also when beat or the periodic worker is gone (nothing runs this
at all) — every way Backstop can fall silent ends in the outside service paging.

The ping is an HTTP GET with a short timeout, made outside any transaction; its result is kept in the
`SwitchPing` row the staff System page shows.
"""

from __future__ import annotations

import logging
from datetime import datetime
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from django.conf import settings
from django.db.models import F

from escalations.models import SwitchPing
from escalations.monitoring import health, metrics

logger = logging.getLogger(__name__)

SWITCH = "deadman"


def _ping(url: str, timeout: float) -> tuple[int | None, str]:
    request = Request(url, headers={"User-Agent": "Backstop dead man's switch"}, method="GET")
    try:
        with urlopen(request, timeout=timeout) as response:
            return response.status, ""
    except HTTPError as exc:
        return exc.code, f"HTTP {exc.code}"
    except (URLError, OSError) as exc:
        return None, exc.__class__.__name__


def deadman_run(*, now: datetime, url: str | None = None) -> SwitchPing:
    """Check, ping when healthy, record. Returns the switch's row as stored."""
    url = settings.BACKSTOP_DEADMAN_URL if url is None else url
    problems = [c.detail for c in health.checks_run(now=now) if not c.ok]
    status: int | None = None
    if not url:
        result = "not configured"
    elif problems:
        result = "unhealthy"
        logger.warning("Dead man's switch not pinged: %s", "; ".join(problems), extra={"event": "deadman_withheld"})
    else:
        status, error = _ping(url, settings.BACKSTOP_DEADMAN_TIMEOUT_SECONDS)
        result = "pinged" if status is not None and 200 <= status < 300 else "ping failed"
        if result != "pinged":
            problems = [f"ping: {error or status}"]
            logger.warning("Dead man's switch ping failed: %s", problems[0], extra={"event": "deadman_ping_failed"})
    metrics.DEADMAN_PINGS.labels(result.replace(" ", "_")).inc()
    fields = {"last_checked_at": now, "last_result": result, "last_problems": problems, "last_status": status}
    switch, created = SwitchPing.objects.get_or_create(name=SWITCH, defaults=fields)
    if not created:
        SwitchPing.objects.filter(name=SWITCH).update(**fields)
        if result == "pinged" and switch.last_result in ("unhealthy", "ping failed"):
            metrics.events_logger.info(
                "Backstop is healthy again (was: %s); the dead man's switch pings again",
                "; ".join(switch.last_problems) or switch.last_result,
                extra={"event": "fault_recovered", "fault": "deadman_" + switch.last_result.replace(" ", "_")},
            )
    if result == "pinged":
        SwitchPing.objects.filter(name=SWITCH).update(last_pinged_at=now, pings=F("pings") + 1)
    switch.refresh_from_db()
    return switch


def switch_get() -> SwitchPing | None:
    return SwitchPing.objects.filter(name=SWITCH).first()
