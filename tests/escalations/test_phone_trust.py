"""Emergency line against spoofed caller ID: attestation decides "verified", floods page once."""

from __future__ import annotations

import pytest

from escalations.models import CallRecord, CustomerContact, CustomerPhone, Incident
from tests.escalations.phone_support import CALLER, call_params, make_line, paged_team, recording_params, twilio_post

pytestmark = pytest.mark.django_db

ATTESTED = {"StirVerstat": "TN-Validation-Passed-A"}


@pytest.fixture
def line():
    return make_line(paged_team()[0], sms_confirmation=True)


@pytest.fixture
def customer():
    contact = CustomerContact.objects.create(organisation="Acme Retail", name="Dana Whitfield")
    CustomerPhone.objects.create(contact=contact, number=CALLER)
    return contact


def voicemail(client, n: int, caller: str, **incoming_extra) -> CallRecord:
    sid = f"CA{n:032d}"
    response = twilio_post(
        client, "phone_line_incoming", call_params(sid, caller=caller, CallStatus="ringing", **incoming_extra)
    )
    assert response.status_code == 200
    twilio_post(
        client,
        "phone_line_recorded",
        recording_params(sid, sid=f"RE{n:032d}", duration=14, CallStatus="in-progress", Digits="#"),
    )
    return CallRecord.objects.get(call_sid=sid)


@pytest.mark.parametrize("verstat", ["", "TN-Validation-Passed-B", "TN-Validation-Passed-C", "TN-Validation-Failed"])
def test_a_directory_number_without_full_attestation_is_unverified(client, line, customer, verstat):
    record = voicemail(client, 1, CALLER, StirVerstat=verstat)
    assert record.customer_contact == customer and not record.caller_verified
    assert record.incident.payload["verification"] == "unverified"


def test_a_directory_number_with_full_attestation_is_verified(client, line, customer):
    record = voicemail(client, 1, CALLER, **ATTESTED)
    assert record.caller_verified and record.incident.payload["verification"] == "verified"


def test_rotating_spoofed_numbers_join_one_flood_incident(client, line, customer, settings):
    settings.BACKSTOP_PHONE_NEW_INCIDENTS_PER_LINE_PER_HOUR = 3
    records = [voicemail(client, n, f"+1555017{n:04d}") for n in range(8)]
    assert [r.incident_created for r in records] == [True] * 3 + [False] * 5
    flood = records[3].incident
    assert flood.title.startswith("Call flood on Emergency line") and flood.dedup_key == f"call-flood:{line.pk}"
    assert {r.incident_id for r in records[3:]} == {flood.pk}
    assert Incident.objects.count() == 4
    assert all(r.sms_status == "" for r in records[3:])  # no texts to spoofed numbers
    # The customer's number spoofed without attestation is one more flood call ...
    assert voicemail(client, 100, CALLER, StirVerstat="TN-Validation-Passed-C").incident_id == flood.pk
    # ... the customer's own attested call still opens their incident, and a second one joins it.
    own = voicemail(client, 101, CALLER, **ATTESTED)
    assert own.incident_created and own.incident_id != flood.pk and own.incident.payload["verification"] == "verified"
    assert voicemail(client, 102, CALLER, **ATTESTED).incident_id == own.incident_id
    assert Incident.objects.count() == 5


def test_the_line_cap_never_refuses_an_attested_customer(client, line, customer):
    line.max_calls_per_line_per_hour = 2
    line.save()
    voicemail(client, 1, "+15550170001")
    voicemail(client, 2, "+15550170002")
    assert voicemail(client, 3, "+15550170003").outcome == CallRecord.Outcome.RATE_LIMITED
    assert voicemail(client, 4, CALLER, **ATTESTED).outcome == CallRecord.Outcome.VOICEMAIL


def test_spoofed_calls_cannot_use_up_a_customers_per_number_quota(client, line, customer):
    line.max_calls_per_number_per_hour = 2
    line.save()
    outcomes = [voicemail(client, n, CALLER).outcome for n in range(3)]  # no attestation: maybe spoofed
    assert outcomes[-1] == CallRecord.Outcome.RATE_LIMITED
    assert voicemail(client, 10, CALLER, **ATTESTED).outcome == CallRecord.Outcome.VOICEMAIL
