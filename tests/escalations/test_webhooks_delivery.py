"""Outgoing webhooks end to end: incident changes → outbox rows → signed POSTs to a real local HTTP
receiver, with the clock driven by time-machine. The sender refuses to POST inside a transaction, so
these tests commit (transaction=True)."""

from __future__ import annotations

import json
import socket
import ssl
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection, transaction

from escalations.incidents import services as incidents
from escalations.models import TimelineEvent, WebhookDelivery, WebhookEvent
from escalations.webhooks import dispatch, events, services, signing
from escalations.webhooks import send as send_module
from escalations.webhooks.send import webhook_post
from tests.factories import T0, MembershipFactory, TeamFactory
from tests.fakes.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.django_db(transaction=True)

WEB = TimelineEvent.Via.WEB


@pytest.fixture
def receiver(settings):
    settings.BACKSTOP_WEBHOOKS_ALLOW_PRIVATE = True  # the receiver listens on loopback
    fake = WebhookReceiver().start()
    yield fake
    fake.stop()


def _sweep(now) -> int:
    """What beat and the workers do, inline: release stuck claims, claim what is due, send it."""
    dispatch.deliveries_stuck_release(now=now)
    ids = dispatch.deliveries_due_claim(now=now)
    return dispatch.deliveries_send(ids=ids, claimed_at=now, now=now) if ids else 0


def _new_delivery_ids(before: int) -> list[int]:
    return list(WebhookDelivery.objects.filter(pk__gt=before).values_list("pk", flat=True))


def _last_id() -> int:
    return WebhookDelivery.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def test_a_receiver_failing_for_ten_minutes_gets_every_event_afterwards_once_each_signed(receiver):
    team, other = TeamFactory(), TeamFactory()
    manager = MembershipFactory(team=team, role="manager").user
    sub = services.subscription_create(team=team, url=receiver.url, events=list(events.EVENT_TYPES), actor=manager)
    # Another team's webhook on the same receiver must not see this team's incidents, nor the reverse.
    services.subscription_create(
        team=other, url=receiver.url.replace("team=payments", "team=other"), events=[events.TRIGGERED], actor=None
    )
    receiver.failing = True
    with time_machine.travel(T0, tick=False) as clock:
        now = T0
        step = 0
        # Ten minutes of activity while the receiver answers 500: every change is tried at once (the
        # commit's publish, run inline here) and again by the sweep every 5 s, per the backoff.
        while now < T0 + timedelta(minutes=10):
            before = _last_id()
            if step % 12 == 0:  # every minute: an incident, a note, an acknowledgement, a resolve
                incident = incidents.incident_trigger(team=team, title=f"Disk full {step}", now=now).incident
                incidents.incident_note_add(incident=incident, by=manager, text="Looking", via=WEB, now=now)
                incidents.incident_acknowledge(incident=incident, by=manager, via=WEB, now=now)
                incidents.incident_resolve(incident=incident, by=manager, via=WEB, now=now)
                incidents.incident_trigger(team=other, title="Elsewhere", now=now)
                ids = _new_delivery_ids(before)
                assert dispatch.deliveries_send(ids=ids, now=now) == 0
            _sweep(now)
            step += 1
            now = T0 + timedelta(seconds=5 * step)
            clock.move_to(now)
        failed_attempts = len(receiver.requests())
        assert failed_attempts > 40 and all(r.status == 500 for r in receiver.requests())
        assert not WebhookDelivery.objects.filter(status=WebhookDelivery.Status.DELIVERED).exists()

        receiver.failing = False
        # The receiver is back; the sweep keeps running until nothing is left (at most a day).
        deadline = T0 + timedelta(hours=25)
        while WebhookDelivery.objects.exclude(status=WebhookDelivery.Status.DELIVERED).exists() and now < deadline:
            _sweep(now)
            now += timedelta(seconds=5)
            clock.move_to(now)
        recovered_by = now

    assert recovered_by < T0 + timedelta(minutes=12), "the backlog went out soon after the receiver was back"
    expected = set(WebhookEvent.objects.filter(team=team).values_list("public_id", flat=True))
    assert len(expected) == 40  # 10 incidents x triggered, annotated, acknowledged, resolved
    accepted = [r for r in receiver.requests() if r.status == 200 and "team=payments" in r.path]
    counts = Counter(r.headers["webhook-id"] for r in accepted)
    assert set(counts) == expected
    assert set(counts.values()) == {1}, "each event accepted exactly once"
    for r in receiver.requests():
        assert signing.verify(
            secret=sub.secret if "team=payments" in r.path else _secret_of(r),
            headers=r.headers,
            body=r.body,
            now=int(r.headers["webhook-timestamp"]),
        )
        body = json.loads(r.body)
        assert body["id"] == r.headers["webhook-id"]
    kinds = Counter(json.loads(r.body)["type"] for r in accepted)
    assert kinds == {
        "incident.triggered": 10,
        "incident.annotated": 10,
        "incident.acknowledged": 10,
        "incident.resolved": 10,
    }
    other_ids = {r.headers["webhook-id"] for r in receiver.requests() if "team=other" in r.path}
    assert other_ids and not other_ids & expected
    assert {json.loads(r.body)["data"]["incident"]["team"]["id"] for r in accepted} == {team.pk}


def _secret_of(received) -> str:
    from escalations.models import WebhookSubscription

    return WebhookSubscription.objects.get(url__endswith=received.path.split("?", 1)[1]).secret


def test_the_body_carries_the_incident_the_agent_and_the_note(receiver):
    team = TeamFactory()
    manager = MembershipFactory(team=team, role="manager").user
    services.subscription_create(team=team, url=receiver.url, events=[events.ANNOTATED], actor=manager)
    incident = incidents.incident_trigger(team=team, title="Checkout down", dedup_key="co-1").incident
    incidents.incident_note_add(incident=incident, by=manager, text="Rolling back", via=WEB)
    ids = list(WebhookDelivery.objects.values_list("pk", flat=True))
    assert len(ids) == 1  # the trigger was not subscribed to
    assert dispatch.deliveries_send(ids=ids) == 1
    (got,) = receiver.requests()
    body = json.loads(got.body)
    assert body["type"] == "incident.annotated"
    assert body["data"]["note"]["content"] == "Rolling back"
    assert body["data"]["agent"] == {"type": "user", "id": manager.pk, "name": manager.display_name}
    assert body["data"]["incident"]["id"] == incident.pk
    assert body["data"]["incident"]["dedup_key"] == "co-1"
    assert body["data"]["incident"]["html_url"].endswith(f"/incidents/{incident.pk}/")
    assert got.headers["content-type"] == "application/json"
    assert got.headers["webhook-signature"].startswith("v1,")


def test_events_roll_back_with_the_change_they_describe(receiver):
    team = TeamFactory()
    services.subscription_create(team=team, url=receiver.url, events=list(events.EVENT_TYPES), actor=None)
    with pytest.raises(RuntimeError), transaction.atomic():
        incidents.incident_trigger(team=team, title="Never committed")
        raise RuntimeError("the caller fails after the change")
    assert not WebhookEvent.objects.exists() and not WebhookDelivery.objects.exists()


def test_nothing_is_sent_inside_a_transaction_and_the_claim_is_committed_first(receiver):
    team = TeamFactory()
    services.subscription_create(team=team, url=receiver.url, events=[events.TRIGGERED], actor=None)
    incidents.incident_trigger(team=team, title="Checkout down")
    seen: list[tuple[str, bool]] = []

    def look(headers, body):
        # From the receiver's own thread and database connection, while the sender waits for the answer:
        # the row is already claimed (committed), and no transaction of the sender holds its lock.
        try:
            with transaction.atomic():
                row = WebhookDelivery.objects.select_for_update(nowait=True).get(event__public_id=headers["webhook-id"])
                seen.append((row.status, True))
        finally:
            connection.close()

    receiver.on_request = look
    ids = list(WebhookDelivery.objects.values_list("pk", flat=True))
    assert dispatch.deliveries_send(ids=ids) == 1
    assert seen == [(WebhookDelivery.Status.SENDING, True)]

    with pytest.raises(RuntimeError, match="inside a database transaction"), transaction.atomic():
        webhook_post(url=receiver.url, body=b"{}", headers={}, allow_private=True)


def test_a_redirect_is_not_followed_and_counts_as_a_failure(receiver):
    team = TeamFactory()
    services.subscription_create(team=team, url=receiver.url, events=[events.TRIGGERED], actor=None)
    incidents.incident_trigger(team=team, title="Checkout down")
    receiver.redirect_to = "http://169.254.169.254/latest/meta-data/"
    ids = list(WebhookDelivery.objects.values_list("pk", flat=True))
    assert dispatch.deliveries_send(ids=ids) == 0
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.PENDING and delivery.response_status == 307
    assert "redirect" in delivery.error
    assert len(receiver.requests()) == 1


def test_retries_stop_after_a_day_and_send_again_restarts_with_the_same_id(receiver):
    team = TeamFactory()
    manager = MembershipFactory(team=team, role="manager").user
    services.subscription_create(team=team, url=receiver.url, events=[events.TRIGGERED], actor=None)
    receiver.failing = True
    with time_machine.travel(T0, tick=False) as clock:
        incidents.incident_trigger(team=team, title="Checkout down", now=T0)
        delivery = WebhookDelivery.objects.get()
        now = T0
        while now < T0 + timedelta(hours=26):
            _sweep(now)
            due = WebhookDelivery.objects.get(pk=delivery.pk).next_attempt_at
            if due is None:
                break
            now = max(due, now + timedelta(seconds=1))
            clock.move_to(now)
        delivery.refresh_from_db()
        assert delivery.status == WebhookDelivery.Status.FAILED
        assert T0 + timedelta(hours=23) <= delivery.last_attempt_at <= T0 + timedelta(hours=24)
        assert 25 <= delivery.attempts <= 40  # quick retries, then hourly until the day is over
        gaps = _gaps([r for r in receiver.requests()])
        assert gaps[0] < 15 and max(gaps) <= 3600 * 1.2 + 1, "backoff grows to an hour, with jitter"

        receiver.failing = False
        services.delivery_resend(delivery=delivery, actor=manager, now=now)
        _sweep(now)
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.DELIVERED
    assert receiver.requests()[-1].status == 200
    assert receiver.requests()[-1].headers["webhook-id"] == delivery.event.public_id


def _gaps(received) -> list[float]:
    stamps = [int(r.headers["webhook-timestamp"]) for r in received]
    return [b - a for a, b in zip(stamps, stamps[1:], strict=False)]


def test_a_worker_dying_mid_send_is_retried_after_the_stuck_timeout(receiver):
    team = TeamFactory()
    services.subscription_create(team=team, url=receiver.url, events=[events.TRIGGERED], actor=None)
    with time_machine.travel(T0, tick=False) as clock:
        incidents.incident_trigger(team=team, title="Checkout down", now=T0)
        assert dispatch.deliveries_due_claim(now=T0)  # claimed, then the worker died: nothing recorded
        clock.move_to(T0 + timedelta(minutes=1))
        assert _sweep(T0 + timedelta(minutes=1)) == 0
        later = T0 + dispatch.STUCK_AFTER + timedelta(seconds=1)
        clock.move_to(later)
        assert _sweep(later) == 1
    assert WebhookDelivery.objects.get().status == WebhookDelivery.Status.DELIVERED
    assert len(receiver.requests()) == 1


def test_rotated_secret_signs_next_to_the_old_one_for_a_day(receiver):
    team = TeamFactory()
    sub = services.subscription_create(team=team, url=receiver.url, events=[events.TRIGGERED], actor=None)
    old = sub.secret
    with time_machine.travel(T0, tick=False) as clock:
        sub = services.subscription_secret_rotate(subscription=sub, actor=None, now=T0)
        incidents.incident_trigger(team=team, title="One", now=T0)
        _sweep(T0)
        later = T0 + timedelta(hours=25)
        clock.move_to(later)
        incidents.incident_trigger(team=team, title="Two", now=later)
        _sweep(later)
    first, second = receiver.requests()
    for secret in (old, sub.secret):
        assert signing.verify(secret=secret, headers=first.headers, body=first.body, now=int(T0.timestamp()))
    assert signing.verify(secret=sub.secret, headers=second.headers, body=second.body, now=int(later.timestamp()))
    assert not signing.verify(secret=old, headers=second.headers, body=second.body, now=int(later.timestamp()))


def test_a_private_target_is_refused_again_at_send_time(receiver, settings):
    team = TeamFactory()
    services.subscription_create(team=team, url=receiver.url, events=[events.TRIGGERED], actor=None)
    settings.BACKSTOP_WEBHOOKS_ALLOW_PRIVATE = False  # e.g. the setting was turned off since
    incidents.incident_trigger(team=team, title="Checkout down")
    ids = list(WebhookDelivery.objects.values_list("pk", flat=True))
    assert dispatch.deliveries_send(ids=ids) == 0
    assert receiver.requests() == []
    delivery = WebhookDelivery.objects.get()
    assert "127.0.0.1" in delivery.error and delivery.status == WebhookDelivery.Status.PENDING


def _self_signed(tmp_path, name: str) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_path), str(key_path)


def test_https_connects_to_the_checked_address_and_verifies_the_urls_host_name(tmp_path, monkeypatch, settings):
    """The POST goes to the address resolved and checked a moment before (no second DNS lookup to
    rebind), while TLS still verifies the certificate for the URL's host name and sends it as SNI."""
    settings.BACKSTOP_WEBHOOKS_ALLOW_PRIVATE = True
    cert, key = _self_signed(tmp_path, "hooks.test")
    receiver = WebhookReceiver()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    receiver._server.socket = context.wrap_socket(receiver._server.socket, server_side=True)
    receiver.start()
    port = receiver._server.server_address[1]
    lookups: list[str] = []

    def resolve(host, port_, *args, **kwargs):
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port_))]

    monkeypatch.setattr("escalations.webhooks.addresses.socket.getaddrinfo", resolve)
    real_pool = send_module._pool

    def trusting_pool(target):  # trust the test's own certificate, as a real CA would be trusted
        pool = real_pool(target)
        pool.ca_certs = cert
        return pool

    monkeypatch.setattr(send_module, "_pool", trusting_pool)
    try:
        ok = webhook_post(url=f"https://hooks.test:{port}/in", body=b"{}", headers={}, allow_private=True)
        wrong = webhook_post(url=f"https://other.test:{port}/in", body=b"{}", headers={}, allow_private=True)
    finally:
        receiver.stop()
    assert ok.ok and ok.status == 200
    assert receiver.requests()[0].headers["host"] == f"hooks.test:{port}"
    assert not wrong.ok and "SSLError" in wrong.error and len(receiver.requests()) == 1
    # urllib3 "resolves" the literal address it was given; the name is looked up once per POST.
    assert [h for h in lookups if h != "127.0.0.1"] == ["hooks.test", "other.test"]


def test_a_test_event_goes_to_that_webhook_only_signed_and_logged(receiver):
    team = TeamFactory()
    sub = services.subscription_create(team=team, url=receiver.url, events=[events.RESOLVED], actor=None)
    other = services.subscription_create(
        team=team, url=receiver.url.replace("payments", "other"), events=[events.RESOLVED], actor=None
    )
    delivery = services.subscription_ping(subscription=sub, actor=MembershipFactory(team=team, role="manager").user)
    assert dispatch.deliveries_send(ids=[delivery.pk]) == 1
    (got,) = receiver.requests()
    body = json.loads(got.body)
    assert body["type"] == "webhook.ping" and body["data"]["subscription"]["id"] == sub.pk
    assert signing.verify(
        secret=sub.secret, headers=got.headers, body=got.body, now=int(got.headers["webhook-timestamp"])
    )
    assert not WebhookDelivery.objects.filter(subscription=other).exists()
