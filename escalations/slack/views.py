"""Slack's inbound requests: button clicks (interactivity) and the `/oncall` slash command.

Every request is checked before anything else: `X-Slack-Signature` must be Slack's HMAC-SHA256 of
`v0:{X-Slack-Request-Timestamp}:{raw body}` under the signing secret, and the timestamp within five
minutes of our clock (slack_sdk's SignatureVerifier); otherwise 401 and nothing is read. A click is
stored under Slack's own id of it (`trigger_id`) before the 200, and worked by a worker after the
answer: Slack wants an answer within 3 seconds. The same click arriving again is never worked twice:
Slack's retries (`X-Slack-Retry-Num`) get a 200, anything else carrying a used id — a replay — a 401.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from slack_sdk.signature import SignatureVerifier

from escalations.slack import publish, services
from escalations.slack.client import slack_inbound_configured

logger = logging.getLogger(__name__)

REPLAY_WINDOW_SECONDS = 60 * 5


def _refusal(request: HttpRequest) -> HttpResponse | None:
    """None when Slack sent this request; else the answer that refuses it."""
    if not slack_inbound_configured():
        return HttpResponse("Slack is not configured here.", status=404, content_type="text/plain")
    verifier = SignatureVerifier(settings.BACKSTOP_SLACK_SIGNING_SECRET)
    timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
    signature = request.headers.get("X-Slack-Signature", "")
    if not timestamp or not signature or not verifier.is_valid(request.body, timestamp, signature):
        logger.warning("refused an unsigned, forged or stale Slack request to %s", request.path)
        return HttpResponse("invalid or stale Slack signature", status=401, content_type="text/plain")
    return None


def _seen(request: HttpRequest) -> HttpResponse:
    if request.headers.get("X-Slack-Retry-Num"):
        return HttpResponse(status=200)  # Slack trying again: the first delivery is being worked
    logger.warning("refused a replayed Slack request to %s", request.path)
    return HttpResponse("replayed Slack request", status=401, content_type="text/plain")


def _block_actions_problem(payload: dict) -> str:
    """What makes a block_actions payload unusable, or "" (a signed body can still be malformed)."""
    user, actions = payload.get("user"), payload.get("actions")
    if not isinstance(user, dict) or not isinstance(user.get("id"), str):
        return "payload.user.id is missing"
    if not isinstance(actions, list) or not actions or not all(isinstance(a, dict) for a in actions):
        return "payload.actions must be a list of actions"
    if not isinstance(payload.get("trigger_id"), str) or not payload["trigger_id"]:
        return "payload.trigger_id is missing"
    return ""


@csrf_exempt
@require_POST
def interactivity(request: HttpRequest) -> HttpResponse:
    refused = _refusal(request)
    if refused is not None:
        return refused
    try:
        payload = json.loads(request.POST.get("payload", ""))
    except ValueError:
        return HttpResponse("payload is not JSON", status=400, content_type="text/plain")
    if not isinstance(payload, dict):
        return HttpResponse("payload is not an object", status=400, content_type="text/plain")
    if payload.get("type") != "block_actions":
        return HttpResponse(status=200)  # other interactions (shortcuts, views) are not ours
    problem = _block_actions_problem(payload)
    if problem:
        return HttpResponse(problem, status=400, content_type="text/plain")
    key = str(payload["trigger_id"])
    row = services.inbound_store(key=f"action:{key}", kind="block_actions", payload=payload, now=timezone.now())
    if row is None:
        return _seen(request)
    if not publish.interaction_enqueue(request_id=row.pk):
        # No broker: work it here rather than lose the click (a few queries and one Slack call).
        services.interaction_handle(request_id=row.pk, now=timezone.now())
    return HttpResponse(status=200)


@csrf_exempt
@require_POST
def command(request: HttpRequest) -> HttpResponse:
    """`/oncall [team]`: answered at once, visible to the asker only."""
    refused = _refusal(request)
    if refused is not None:
        return refused
    trigger = request.POST.get("trigger_id", "")
    now = timezone.now()
    if not trigger or services.inbound_store(key=f"command:{trigger}", kind="command", payload={}, now=now) is None:
        return _seen(request) if trigger else HttpResponse("no trigger_id", status=400, content_type="text/plain")
    if request.POST.get("command", "/oncall") != "/oncall":
        return JsonResponse({"response_type": "ephemeral", "text": "Backstop answers /oncall only."})
    text = services.oncall_answer(
        text=request.POST.get("text", ""),
        channel_id=request.POST.get("channel_id", ""),
        slack_user_id=request.POST.get("user_id", ""),
        now=now,
    )
    return JsonResponse({"response_type": "ephemeral", "text": text})
