"""Shared set-up for the emergency line tests: a line, and requests signed as Twilio signs them."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse
from twilio.request_validator import RequestValidator

from escalations.models import PhoneLine
from tests.factories import (
    ContactMethodFactory,
    EscalationPolicyFactory,
    EscalationStepFactory,
    EscalationTargetFactory,
    MembershipFactory,
    NotificationRuleFactory,
    TeamFactory,
)

LINE_NUMBER = "+15550100999"
CALLER = "+15550142001"
ACCOUNT = "AC" + "0" * 32


def sign(url: str, params: dict) -> str:
    return RequestValidator(settings.TWILIO_AUTH_TOKEN).compute_signature(url, params)


def twilio_post(
    client,
    name: str,
    params: dict,
    *,
    query: dict | None = None,
    signature: str | None = None,
    sign_url: str | None = None,
):
    """POST form-encoded like Twilio, signed over PUBLIC_BASE_URL + path (as the proxy hides it)."""
    path = reverse(name if ":" in name else f"twilio:{name}") + (f"?{urlencode(query)}" if query else "")
    if signature is None:
        signature = sign(sign_url or settings.PUBLIC_BASE_URL + path, params)
    headers = {"HTTP_X_TWILIO_SIGNATURE": signature} if signature else {}
    return client.post(path, params, **headers)


def call_params(call_sid: str = "CA" + "1" * 32, *, caller: str = CALLER, to: str = LINE_NUMBER, **extra) -> dict:
    return {
        "CallSid": call_sid,
        "AccountSid": ACCOUNT,
        "From": caller,
        "To": to,
        "ApiVersion": "2010-04-01",
        "Direction": "inbound",
        **{k: str(v) for k, v in extra.items()},
    }


def recording_params(call_sid: str, *, sid: str = "RE" + "a" * 32, duration: int | str = 14, **extra) -> dict:
    url = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{sid}"
    return call_params(call_sid, RecordingSid=sid, RecordingUrl=url, RecordingDuration=duration, **extra)


def paged_team(name: str = "Payments"):
    """A team whose policy pages one engineer (with a verified SMS rule) at step 0."""
    team = TeamFactory(name=name)
    engineer = MembershipFactory(team=team, role="engineer").user
    NotificationRuleFactory(contact_method=ContactMethodFactory(user=engineer))
    policy = EscalationPolicyFactory(team=team, name="Default")
    EscalationTargetFactory(step=EscalationStepFactory(policy=policy, order=0), kind="user", position="", user=engineer)
    team.escalation_policy = policy
    team.save(update_fields=["escalation_policy"])
    return team, engineer


def make_line(team, **fields) -> PhoneLine:
    return PhoneLine.objects.create(number=LINE_NUMBER, name="Emergency line", team=team, **fields)
