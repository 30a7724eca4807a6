"""Every /twilio/ endpoint refuses unsigned, forged, replayed-elsewhere and tampered requests (403, nothing
changed), and a genuine exact replay (Twilio retries) does no work twice."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from escalations.incidents.advance import incident_advance
from escalations.incidents.services import incident_trigger
from escalations.models import CallRecord, Incident, OutboxMessage, Page, TimelineEvent
from portal.models import ContactMethod
from tests.escalations.phone_support import call_params, make_line, paged_team, recording_params, sign
from tests.factories import ContactMethodFactory, PageFactory

pytestmark = pytest.mark.django_db

SID = "CA" + "1" * 32
LEG = "CA" + "2" * 32
MODELS = (Incident, Page, TimelineEvent, CallRecord, OutboxMessage)


def _snapshot() -> dict:
    state = {m.__name__: m.objects.count() for m in MODELS}
    state["incident_states"] = sorted(Incident.objects.values_list("pk", "status"))
    state["page_states"] = sorted(Page.objects.values_list("pk", "status"))
    state["call_states"] = sorted(CallRecord.objects.values_list("pk", "outcome", "recording_sid", "transcript"))
    return state


@pytest.fixture
def world(monkeypatch):
    from escalations.delivery import publish

    monkeypatch.setattr(publish, "page_enqueue", lambda ids, eta=None: None)
    team, engineer = paged_team()
    make_line(team)
    incident = incident_trigger(team=team, title="Checkout down", source="alert").incident
    incident_advance(incident_id=incident.pk)
    voice = ContactMethodFactory(user=engineer, kind=ContactMethod.Kind.VOICE)
    page = PageFactory(incident=incident, contact_method=voice, rule_index=7)
    Page.objects.filter(pk=page.pk).update(status=Page.Status.SENT, provider_id="SM123", sent_at=timezone.now())
    sms = ContactMethod.objects.filter(user=engineer, kind=ContactMethod.Kind.SMS).first()
    return {"page": page.pk, "incident": incident.pk, "engineer": engineer.pk, "sms_from": sms.value}


# name, URL kwargs, query, params — all built from the world.
ENDPOINTS = {
    "page-status": lambda w: ({"page_id": w["page"]}, None, {"MessageSid": "SM123", "MessageStatus": "delivered"}),
    "sms-inbound": lambda w: ({}, None, {"From": w["sms_from"], "Body": f"{w['incident']}A"}),
    "voice-page": lambda w: ({"page_id": w["page"]}, None, {"CallSid": "SM123", "AnsweredBy": "machine_start"}),
    "voice-page-gather": lambda w: ({"page_id": w["page"]}, None, {"CallSid": "SM123", "Digits": "3"}),
    "phone_line_incoming": lambda w: ({}, None, call_params("CA" + "3" * 32)),
    "phone_line_menu": lambda w: ({}, None, call_params(SID, Digits="1")),
    "phone_line_record": lambda w: ({}, None, call_params(SID)),
    "phone_line_recorded": lambda w: ({}, None, recording_params(SID)),
    "phone_line_recording_status": lambda w: ({}, None, recording_params(SID, RecordingStatus="completed")),
    "phone_line_transcription": lambda w: (
        {},
        None,
        call_params(
            SID, TranscriptionText="Checkout is down", TranscriptionStatus="completed", RecordingSid="RE" + "a" * 32
        ),
    ),
    "phone_line_status": lambda w: ({}, None, call_params(SID, CallStatus="completed", CallDuration=40)),
    "phone_line_dial_done": lambda w: ({}, {"attempt": 0}, call_params(SID, DialCallStatus="no-answer")),
    "phone_line_whisper": lambda w: ({}, {"call": SID, "user": w["engineer"]}, call_params(LEG)),
    "phone_line_whisper_accept": lambda w: ({}, {"call": SID, "user": w["engineer"]}, call_params(LEG, Digits="1")),
}


def _path(name: str, kwargs: dict, query: dict | None) -> str:
    return reverse(f"twilio:{name}", kwargs=kwargs) + (f"?{urlencode(query)}" if query else "")


def _post(client, path: str, params: dict, signature: str | None):
    headers = {"HTTP_X_TWILIO_SIGNATURE": signature} if signature is not None else {}
    return client.post(path, params, **headers)


def _call_in_progress(client):
    """A real call on the line first, so the line endpoints have something they could change."""
    path = reverse("twilio:phone_line_incoming")
    params = call_params(SID)
    assert _post(client, path, params, sign(settings.PUBLIC_BASE_URL + path, params)).status_code == 200


def test_every_twilio_url_is_covered():
    from escalations import twilio_urls

    assert {p.name for p in twilio_urls.urlpatterns} == set(ENDPOINTS)


@pytest.mark.parametrize("how", ["unsigned", "forged", "replayed_from_other_url", "tampered", "other_token"])
@pytest.mark.parametrize("name", sorted(ENDPOINTS))
def test_bad_signature_is_refused_and_changes_nothing(client, world, name, how):
    _call_in_progress(client)
    kwargs, query, params = ENDPOINTS[name](world)
    path = _path(name, kwargs, query)
    url = settings.PUBLIC_BASE_URL + path
    if how == "unsigned":
        signature = None
    elif how == "forged":
        signature = "bm90IGEgc2lnbmF0dXJlIGF0IGFsbA=="
    elif how == "replayed_from_other_url":
        # A genuine signature, captured from a request to another endpoint, with the same body.
        other = "sms-inbound" if name != "sms-inbound" else "page-status"
        okw, oquery, _ = ENDPOINTS[other](world)
        signature = sign(settings.PUBLIC_BASE_URL + _path(other, okw, oquery), params)
    elif how == "tampered":
        signature = sign(url, params)
        params = {**params, "From": "+15550199999", "Digits": "2", "CallStatus": "failed"}
    else:
        from twilio.request_validator import RequestValidator

        signature = RequestValidator("not-our-token").compute_signature(url, params)
    before = _snapshot()
    response = _post(client, path, params, signature)
    assert response.status_code == 403
    assert _snapshot() == before


@pytest.mark.parametrize("name", sorted(ENDPOINTS))
def test_genuine_exact_replay_does_the_work_once(client, world, name):
    _call_in_progress(client)
    kwargs, query, params = ENDPOINTS[name](world)
    path = _path(name, kwargs, query)
    signature = sign(settings.PUBLIC_BASE_URL + path, params)
    first = _post(client, path, params, signature)
    assert first.status_code in (200, 204)
    after_first = _snapshot()
    second = _post(client, path, params, signature)
    assert second.status_code == first.status_code
    assert _snapshot() == after_first
