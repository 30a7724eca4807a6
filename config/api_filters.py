"""Filter fields shared by the API filtersets."""

from __future__ import annotations

from datetime import UTC, datetime

import django_filters
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField


class UtcIsoDateTimeField(IsoDateTimeField):
    """ISO 8601 instant, normalised to UTC. django-filter passes an aware value through with its own
    offset, and PostgreSQL refuses offsets beyond ±15:59 ("-23:29" is valid ISO 8601) with a DataError
    (a 500). Converting here turns an impossible instant into a plain validation error instead."""

    def to_python(self, value) -> datetime | None:
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00+01:00 has no UTC instant
            raise ValidationError("This instant is out of range.", code="invalid") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField
