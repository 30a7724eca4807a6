"""`/metrics`: the Prometheus exposition, for a bearer token or a configured client address.

Under gunicorn every worker process writes its counters to PROMETHEUS_MULTIPROC_DIR and the one
answering reads them all, so a scrape sees the whole web server; the database and broker gauges are
computed here, once per scrape (`collectors`). Celery workers serve their own counters on
WORKER_METRICS_PORT (config/celery.py).
"""

from __future__ import annotations

import hmac
import ipaddress
import os

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

from escalations.monitoring.collectors import BackstopCollector


def _token_ok(request: HttpRequest) -> bool:
    token = settings.BACKSTOP_METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def _address_ok(request: HttpRequest) -> bool:
    # REMOTE_ADDR only: X-Forwarded-For is whatever the client wrote unless a proxy rewrote it.
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in settings.BACKSTOP_METRICS_ALLOWED_NETWORKS)


def exposition() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        process = generate_latest(registry)
    else:
        process = generate_latest(REGISTRY)
    state = CollectorRegistry(auto_describe=False)
    state.register(BackstopCollector())
    return process + generate_latest(state)


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not (_token_ok(request) or _address_ok(request)):
        response = HttpResponse("Metrics need a bearer token or an allowed address.\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
