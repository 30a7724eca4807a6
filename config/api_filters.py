"""Filter fields shared by the API filtersets."""

from __future__ import annotations

from datetime import UTC, datetime

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import extend_schema_field


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


# PostgreSQL's bigint, the type of every primary key here (DEFAULT_AUTO_FIELD is BigAutoField).
MAX_ID = 2**63 - 1


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class IdFilter(django_filters.NumberFilter):
    """A filter on a primary or foreign key: a whole number from 1 to bigint's maximum, else a 400.
    NumberFilter alone takes decimals ("1.5", "1e400") and any size, which would quietly match
    nothing instead of telling the caller the id cannot exist."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)

    def get_max_validator(self) -> None:
        return None  # the form field's max_value is the bound
