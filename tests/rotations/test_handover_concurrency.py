"""Two beats running the handover job at the same moment send each handover once."""

import threading

import pytest
from django.core import mail
from django.db import connection

from rotations.handover import handovers_run
from rotations.models import Handover
from tests.rotations.conftest import utc


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_send_each_handover_once(week):
    handovers_run(now=utc(2026, 10, 24, 6, 59))
    mail.outbox.clear()
    barrier = threading.Barrier(2)
    errors = []

    def beat():
        try:
            barrier.wait()
            handovers_run(now=utc(2026, 10, 24, 7, 1))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=beat) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    # 24th 09:00: primary C -> D, secondary D -> A (D stays on call): D, A incoming, C outgoing.
    assert sorted(m.to[0] for m in mail.outbox) == ["ann@example.com", "cat@example.com", "dan@example.com"]
    assert Handover.objects.filter(at=utc(2026, 10, 24, 7)).count() == 2
    assert not Handover.objects.filter(at=utc(2026, 10, 24, 7), sent_at__isnull=True).exists()
