"""Incident list filters (django-filter)."""

from __future__ import annotations

from datetime import timedelta

import django_filters
from django import forms
from django.urls import reverse
from django.utils import timezone

from config.parsing import small_uint
from escalations.models import Incident
from portal.widgets import PlainSelect
from rotations.models import Team

RANGES = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30), "90d": timedelta(days=90)}
STATUS_CHOICES = [("open", "Open (triggered or acknowledged)"), *Incident.Status.choices]


TEAM_SELECT_MAX = 50  # more visible teams than this (staff): a search field instead of a <select>


class TeamKeyField(forms.ModelChoiceField):
    """A team by id or slug: the select sends ids, the search field (and old links) a slug or an id."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        key = str(value).strip()[:100]
        team = self.queryset.filter(slug=key).first()
        if team is None and (pk := small_uint(key)) is not None:
            team = self.queryset.filter(pk=pk).first()
        if team is None:
            raise forms.ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return team


class TeamKeyFilter(django_filters.ModelChoiceFilter):
    field_class = TeamKeyField


class IncidentFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=STATUS_CHOICES, method="filter_status", empty_label="Any status")
    team = TeamKeyFilter(queryset=Team.objects.none(), empty_label="All my teams", widget=PlainSelect)
    severity = django_filters.ChoiceFilter(choices=Incident.Severity.choices, empty_label="Any severity")
    source = django_filters.ChoiceFilter(choices=Incident.Source.choices, empty_label="Any source")
    mine = django_filters.BooleanFilter(method="filter_mine", label="Assigned to me", widget=forms.CheckboxInput)
    range = django_filters.ChoiceFilter(
        choices=[("24h", "Last 24 hours"), ("7d", "Last 7 days"), ("30d", "Last 30 days"), ("90d", "Last 90 days")],
        method="filter_range",
        empty_label="Any time",
        label="Time range",
    )

    class Meta:
        model = Incident
        fields = ["status", "team", "severity", "source", "mine", "range"]

    def __init__(self, *args, user, team_ids, now=None, **kwargs):
        """team_ids: the teams the user sees, None for every team (staff)."""
        self.user = user
        self.now = now or timezone.now()
        super().__init__(*args, **kwargs)
        teams = Team.objects.all() if team_ids is None else Team.objects.filter(pk__in=team_ids)
        self.filters["team"].queryset = teams.order_by("name")
        if team_ids is None or len(team_ids) > TEAM_SELECT_MAX:
            self.filters["team"].extra["widget"] = forms.TextInput(
                attrs={
                    "type": "search",
                    "list": "incident-team-options",
                    "placeholder": "Any team: type a name",
                    "autocomplete": "off",
                    "hx-get": reverse("portal:team_options"),
                    "hx-trigger": "focus once, input changed delay:250ms",
                    "hx-target": "#incident-team-options",
                    "hx-swap": "innerHTML",
                }
            )

    def filter_status(self, queryset, name, value):
        if value == "open":
            return queryset.exclude(status=Incident.Status.RESOLVED)
        return queryset.filter(status=value)

    def filter_mine(self, queryset, name, value):
        if value:
            return queryset.filter(assignees=self.user)
        return queryset

    def filter_range(self, queryset, name, value):
        if value in RANGES:
            return queryset.filter(created_at__gte=self.now - RANGES[value])
        return queryset
