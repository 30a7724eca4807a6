"""Small presentation helpers: avatars, badges, human durations, pretty JSON."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from django import template
from django.apps import apps
from django.utils import timezone
from django.utils.html import format_html

register = template.Library()


@register.simple_tag
def avatar(user, size: str = "") -> str:
    """Initials in a coloured circle; a red '?' for nobody (a gap)."""
    extra = f" {size}" if size else ""
    if user is None:
        return format_html('<span class="avatar none{}" aria-hidden="true">?</span>', extra)
    return format_html(
        '<span class="avatar c{}{}" aria-hidden="true">{}</span>', user.pk % 6, extra, user.initials or "?"
    )


@register.simple_tag
def badge(value: str, label: str = "") -> str:
    return format_html('<span class="badge badge-{}">{}</span>', value, label or str(value).replace("_", " "))


@register.filter
def duration(value: timedelta | float | int | None) -> str:
    """3 h 05 m / 4 m 10 s / 12 s."""
    if value is None or value == "":
        return "—"
    seconds = int(value.total_seconds() if isinstance(value, timedelta) else value)
    if seconds < 0:
        seconds = 0
    days, rem = divmod(seconds, 86400)
    hours, rem = divmod(rem, 3600)
    minutes, secs = divmod(rem, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} m"
    if minutes:
        return f"{minutes} m {secs:02d} s" if secs else f"{minutes} m"
    return f"{secs} s"


@register.filter
def pretty_json(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


@register.filter
def since(value: datetime | None) -> str:
    """'4 m ago' relative to now."""
    if value is None:
        return ""
    return duration(timezone.now() - value) + " ago"


@register.simple_tag(takes_context=True)
def query_with(context, **changes) -> str:
    """The current query string with some parameters replaced (pagination links keep the filters)."""
    params = context["request"].GET.copy()
    for key, val in changes.items():
        if val is None or val == "":
            params.pop(key, None)
        else:
            params[key] = val
    return params.urlencode()


@register.filter
def audit_object(object_type: str) -> str:
    """An audit row's object type as people say it ("escalations.escalationpolicy" → "escalation policy");
    a type no installed model has is shown as stored."""
    try:
        return str(apps.get_model(object_type)._meta.verbose_name)
    except (LookupError, ValueError):
        return object_type


@register.filter
def web_url(value) -> str:
    """`value` if it is an http(s) link, else "": links from senders must not carry javascript: and the like."""
    text = str(value or "").strip()
    return text if text.lower().startswith(("https://", "http://")) else ""
