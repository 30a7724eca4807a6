"""Health endpoints for load balancers and monitors."""

from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache

from config.celery import app
from portal.models import JobRun


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def database_problem() -> str | None:
    """None when the database answers; otherwise what is wrong (shared with the staff System page)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        return f"database: {exc.__class__.__name__}"
    return None


def broker_problem() -> str | None:
    """None when the broker answers; otherwise what is wrong."""
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        return f"broker: {exc.__class__.__name__}"
    return None


def _check_beat(stale_after: timedelta) -> str | None:
    last = JobRun.objects.filter(name="escalation-sweep").values_list("last_success_at", flat=True).first()
    if last is None:
        return "beat: the escalation sweep has never run"
    if timezone.now() - last > stale_after:
        return f"beat: the escalation sweep last ran at {last.isoformat()}"
    return None


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    problems = [p for p in (database_problem(), broker_problem()) if p]
    if not problems:
        beat = _check_beat(settings.BACKSTOP_BEAT_STALE_AFTER)
        if beat:
            problems.append(beat)
    status = 200 if not problems else 503
    return JsonResponse({"status": "ready" if not problems else "unavailable", "problems": problems}, status=status)
