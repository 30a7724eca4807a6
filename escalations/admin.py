from django.contrib import admin

from escalations.models import (
    Alert,
    AlertGroupMember,
    ChangeEvent,
    EscalationPolicy,
    EscalationStep,
    EscalationTarget,
    Heartbeat,
    Incident,
    Integration,
    MaintenanceWindow,
    Page,
    TimelineEvent,
)


class EscalationStepInline(admin.TabularInline):
    model = EscalationStep
    extra = 0
    show_change_link = True


@admin.register(EscalationPolicy)
class EscalationPolicyAdmin(admin.ModelAdmin):
    list_display = ("name", "team", "repeat", "ack_timeout", "skip_empty_steps")
    list_filter = ("team",)
    search_fields = ("name", "team__name")
    list_select_related = ("team",)
    inlines = [EscalationStepInline]


class EscalationTargetInline(admin.TabularInline):
    model = EscalationTarget
    extra = 0


@admin.register(EscalationStep)
class EscalationStepAdmin(admin.ModelAdmin):
    list_display = ("policy", "order", "delay")
    list_select_related = ("policy__team",)
    inlines = [EscalationTargetInline]


class TimelineInline(admin.TabularInline):
    model = TimelineEvent
    extra = 0
    can_delete = False
    fields = ("at", "kind", "actor", "via", "message")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "team", "status", "severity", "source", "created_at", "next_action_at")
    list_filter = ("status", "severity", "source", "team")
    search_fields = ("title", "dedup_key")
    date_hierarchy = "created_at"
    list_select_related = ("team",)
    readonly_fields = ("policy_snapshot", "cycle", "step", "loop", "next_action_at", "triggered_at", "exhausted")
    inlines = [TimelineInline]


@admin.register(Page)
class PageAdmin(admin.ModelAdmin):
    list_display = ("id", "incident", "user", "channel", "destination", "status", "due_at", "sent_at", "attempts")
    list_filter = ("status", "channel")
    search_fields = ("destination", "provider_id", "user__email")
    list_select_related = ("incident", "user")
    date_hierarchy = "due_at"


@admin.register(Integration)
class IntegrationAdmin(admin.ModelAdmin):
    list_display = ("name", "team", "kind", "enabled", "policy", "created_at")
    list_filter = ("kind", "enabled", "team")
    search_fields = ("name", "team__name")
    list_select_related = ("team", "policy")
    readonly_fields = ("key",)


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ("id", "integration", "action", "status", "dedup_key", "summary", "incident", "received_at")
    list_filter = ("action", "status")
    search_fields = ("dedup_key", "fingerprint", "summary")
    list_select_related = ("integration__team", "incident")
    date_hierarchy = "received_at"
    raw_id_fields = ("incident",)


@admin.register(AlertGroupMember)
class AlertGroupMemberAdmin(admin.ModelAdmin):
    list_display = ("incident", "fingerprint", "status", "starts_at", "ends_at", "updated_at")
    list_filter = ("status",)
    search_fields = ("fingerprint",)
    raw_id_fields = ("incident",)


@admin.register(Heartbeat)
class HeartbeatAdmin(admin.ModelAdmin):
    list_display = ("name", "team", "interval", "grace", "state", "last_ping_at", "enabled")
    list_filter = ("state", "enabled", "team")
    search_fields = ("name",)
    list_select_related = ("team",)
    readonly_fields = ("token", "open_incident")


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(admin.ModelAdmin):
    list_display = ("team", "integration", "start", "end", "reason", "created_by")
    list_filter = ("team",)
    list_select_related = ("team", "integration", "created_by")


@admin.register(ChangeEvent)
class ChangeEventAdmin(admin.ModelAdmin):
    list_display = ("timestamp", "team", "integration", "summary", "source")
    list_filter = ("team",)
    search_fields = ("summary", "source")
    list_select_related = ("team", "integration")
    date_hierarchy = "timestamp"
