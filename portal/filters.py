"""Incident list filters (django-filter)."""

from __future__ import annotations

from datetime import timedelta

import django_filters
from django import forms
from django.utils import timezone

from escalations.models import Incident
from rotations.models import Team

RANGES = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30), "90d": timedelta(days=90)}
STATUS_CHOICES = [("open", "Open (triggered or acknowledged)"), *Incident.Status.choices]


class IncidentFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=STATUS_CHOICES, method="filter_status", empty_label="Any status")
    team = django_filters.ModelChoiceFilter(queryset=Team.objects.none(), empty_label="All my teams")
    severity = django_filters.ChoiceFilter(choices=Incident.Severity.choices, empty_label="Any severity")
    source = django_filters.ChoiceFilter(choices=Incident.Source.choices, empty_label="Any source")
    mine = django_filters.BooleanFilter(
        method="filter_mine", label="Assigned to me", widget=forms.CheckboxInput
    )
    range = django_filters.ChoiceFilter(
        choices=[("24h", "Last 24 hours"), ("7d", "Last 7 days"), ("30d", "Last 30 days"), ("90d", "Last 90 days")],
        method="filter_range", empty_label="Any time", label="Time range",
    )

    class Meta:
        model = Incident
        fields = ["status", "team", "severity", "source", "mine", "range"]

    def __init__(self, *args, user, team_ids, now=None, **kwargs):
        self.user = user
        self.now = now or timezone.now()
        super().__init__(*args, **kwargs)
        self.filters["team"].queryset = Team.objects.filter(pk__in=team_ids).order_by("name")

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
