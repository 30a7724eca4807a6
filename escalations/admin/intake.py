"""Admin for intake: integrations, alerts, the inbox, heartbeats, maintenance windows, changes.

Writes go through the intake services, with their validation and audit."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from escalations.intake import services as intake_services
from escalations.models import (
    Alert,
    AlertGroupMember,
    ChangeEvent,
    Heartbeat,
    InboxEvent,
    Integration,
    MaintenanceWindow,
)

# Integrations, heartbeats and maintenance windows are written through escalations.intake.services, like
# the API: the form runs the services' checks (so a refusal is a form error, not a 500) and saving or
# deleting calls the service, which audits. The team (and an integration's kind) is fixed once created.


def _errors_add(form: forms.ModelForm, exc: ValidationError) -> None:
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


class _ServiceForm(forms.ModelForm):
    def _team(self):
        return self.cleaned_data.get("team") or getattr(self.instance, "team", None)

    def clean(self):
        cleaned = super().clean()
        team = self._team()
        if team is not None and not self.errors:
            try:
                self.service_check(team, cleaned)
            except ValidationError as exc:
                _errors_add(self, exc)
        return cleaned

    def service_check(self, team, cleaned: dict) -> None:
        raise NotImplementedError


class _ServiceAdmin(admin.ModelAdmin):
    fixed_on_change: tuple[str, ...] = ("team",)

    def get_readonly_fields(self, request, obj=None):
        fixed = self.fixed_on_change if obj is not None else ()
        return (*super().get_readonly_fields(request, obj), *fixed)

    def save_model(self, request, obj, form, change):
        saved = self.service_save(request, obj, form.cleaned_data, change)
        obj.pk = saved.pk
        obj._state.adding = False
        obj.refresh_from_db()

    def service_save(self, request, obj, data: dict, change: bool):
        raise NotImplementedError

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


class IntegrationForm(_ServiceForm):
    def service_check(self, team, cleaned: dict) -> None:
        instance = self.instance if self.instance.pk else None
        intake_services.integration_check(
            team=team,
            name=cleaned.get("name", ""),
            kind=cleaned.get("kind", getattr(instance, "kind", "")),
            policy=cleaned.get("policy"),
            integration=instance,
        )


@admin.register(Integration)
class IntegrationAdmin(_ServiceAdmin):
    form = IntegrationForm
    list_display = ("name", "team", "kind", "enabled", "policy", "created_at")
    list_filter = ("kind", "enabled", "team")
    search_fields = ("name", "team__name")
    list_select_related = ("team", "policy")
    readonly_fields = ("key",)
    fixed_on_change = ("team", "kind")
    actions = ["key_rotate"]

    def service_save(self, request, obj, data: dict, change: bool):
        if change:
            return intake_services.integration_update(
                integration=obj,
                actor=request.user,
                name=data["name"],
                kind=obj.kind,
                enabled=data["enabled"],
                policy=data.get("policy"),
                urgency_rule=data.get("urgency_rule"),
            )
        return intake_services.integration_create(
            team=data["team"],
            name=data["name"],
            kind=data["kind"],
            enabled=data["enabled"],
            policy=data.get("policy"),
            urgency_rule=data.get("urgency_rule") or Integration.UrgencyRule.SEVERITY,
            actor=request.user,
        )

    def delete_model(self, request, obj):
        intake_services.integration_delete(integration=obj, actor=request.user)

    @admin.action(description="Rotate the key (the old one stops working at once)")
    def key_rotate(self, request, queryset):
        for integration in queryset:
            intake_services.integration_key_rotate(integration=integration, actor=request.user)


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ("id", "integration", "action", "status", "dedup_key", "summary", "incident", "received_at")
    list_filter = ("action", "status")
    search_fields = ("dedup_key", "fingerprint", "summary")
    list_select_related = ("integration__team", "incident")
    date_hierarchy = "received_at"
    raw_id_fields = ("incident",)


@admin.register(InboxEvent)
class InboxEventAdmin(admin.ModelAdmin):
    """Accepted events waiting for the drain, and any it set aside (with `error`). Read-only: an
    event is applied by the drain, exactly once, never by hand."""

    list_display = ("id", "integration", "kind", "action", "dedup_key", "received_at", "processed_at", "error")
    list_filter = ("kind", ("processed_at", admin.EmptyFieldListFilter))
    search_fields = ("dedup_key", "error")
    list_select_related = ("integration__team",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AlertGroupMember)
class AlertGroupMemberAdmin(admin.ModelAdmin):
    list_display = ("incident", "fingerprint", "status", "starts_at", "ends_at", "updated_at")
    list_filter = ("status",)
    search_fields = ("fingerprint",)
    raw_id_fields = ("incident",)


class HeartbeatForm(_ServiceForm):
    def service_check(self, team, cleaned: dict) -> None:
        intake_services.heartbeat_check(
            team=team,
            name=cleaned.get("name", ""),
            interval=cleaned.get("interval") or self.instance.interval,
            grace=cleaned.get("grace", self.instance.grace),
            integration=cleaned.get("integration"),
            heartbeat=self.instance if self.instance.pk else None,
        )


@admin.register(Heartbeat)
class HeartbeatAdmin(_ServiceAdmin):
    form = HeartbeatForm
    list_display = ("name", "team", "interval", "grace", "state", "last_ping_at", "enabled")
    list_filter = ("state", "enabled", "team")
    search_fields = ("name",)
    list_select_related = ("team",)
    readonly_fields = ("token", "open_incident", "last_ping_at", "state", "created_at")
    actions = ["token_rotate"]

    def service_save(self, request, obj, data: dict, change: bool):
        fields = {
            "name": data["name"],
            "interval": data["interval"],
            "grace": data["grace"],
            "enabled": data["enabled"],
            "integration": data.get("integration"),
        }
        if change:
            return intake_services.heartbeat_update(heartbeat=obj, actor=request.user, **fields)
        return intake_services.heartbeat_create(team=data["team"], actor=request.user, **fields)

    def delete_model(self, request, obj):
        intake_services.heartbeat_delete(heartbeat=obj, actor=request.user)

    @admin.action(description="Rotate the ping token (the old URL stops working at once)")
    def token_rotate(self, request, queryset):
        for heartbeat in queryset:
            intake_services.heartbeat_token_rotate(heartbeat=heartbeat, actor=request.user)


class MaintenanceWindowForm(_ServiceForm):
    def service_check(self, team, cleaned: dict) -> None:
        intake_services.maintenance_window_check(
            team=team, start=cleaned["start"], end=cleaned["end"], integration=cleaned.get("integration")
        )


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(_ServiceAdmin):
    form = MaintenanceWindowForm
    list_display = ("team", "integration", "start", "end", "reason", "created_by")
    list_filter = ("team",)
    list_select_related = ("team", "integration", "created_by")
    readonly_fields = ("created_by",)
    actions = ["end_now"]

    def service_save(self, request, obj, data: dict, change: bool):
        fields = {
            "start": data["start"],
            "end": data["end"],
            "integration": data.get("integration"),
            "reason": data.get("reason", ""),
        }
        if change:
            return intake_services.maintenance_window_update(window=obj, actor=request.user, **fields)
        return intake_services.maintenance_window_create(team=data["team"], actor=request.user, **fields)

    def delete_model(self, request, obj):
        intake_services.maintenance_window_delete(window=obj, actor=request.user)

    @admin.action(description="End now (alerts page again)")
    def end_now(self, request, queryset):
        for window in queryset:
            try:
                intake_services.maintenance_window_end(window=window, actor=request.user)
            except ValidationError as exc:
                self.message_user(request, f"{window}: {'; '.join(exc.messages)}", level="error")


@admin.register(ChangeEvent)
class ChangeEventAdmin(admin.ModelAdmin):
    list_display = ("timestamp", "team", "integration", "summary", "source")
    list_filter = ("team",)
    search_fields = ("summary", "source")
    list_select_related = ("team", "integration")
    date_hierarchy = "timestamp"
