"""Helpers every portal form module shares."""

from __future__ import annotations

import functools
import zoneinfo

from django import forms
from django.core.exceptions import ValidationError


@functools.cache
def timezone_choices() -> tuple[tuple[str, str], ...]:
    # available_timezones() walks the tz database on disk (~40 ms): once per process is enough.
    return tuple((z, z.replace("_", " ")) for z in sorted(zoneinfo.available_timezones()))


def apply_errors(form: forms.Form, error: ValidationError) -> None:
    """Put a service's ValidationError onto the form (field errors where the field exists)."""
    if hasattr(error, "error_dict"):
        for field, errors in error.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error.messages)
