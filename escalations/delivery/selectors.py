"""Page reads for the callbacks and SMS replies."""

from __future__ import annotations

from escalations.models import Incident, Page


def page_bundle_incidents(page: Page) -> list[Incident]:
    """The incidents a (carrier) page's message covers, oldest first."""
    ids = {page.incident_id} | set(Page.objects.filter(bundled_into=page).values_list("incident_id", flat=True))
    return list(Incident.objects.filter(pk__in=ids).select_related("team").order_by("pk"))


def page_open_incidents(page: Page) -> list[Incident]:
    return [i for i in page_bundle_incidents(page) if i.status == Incident.Status.TRIGGERED]
