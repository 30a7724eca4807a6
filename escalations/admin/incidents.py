"""Admin for escalation policies, incidents, pages and the outbox."""

from django.contrib import admin

from escalations.models import (
    EscalationPolicy,
    EscalationStep,
    EscalationTarget,
    Incident,
    OutboxMessage,
    Page,
    TimelineEvent,
)
from escalations.policies import services as policy_services


class EscalationStepInline(admin.TabularInline):
    model = EscalationStep
    extra = 0
    show_change_link = True


class _PolicyAuditMixin:
    """Admin edits of a policy, its steps or their targets land in the audit log like portal edits:
    the audited state is read before the save and compared after the inlines are saved."""

    def _policy_of(self, obj) -> EscalationPolicy:
        raise NotImplementedError

    def save_model(self, request, obj, form, change):
        policy_id = self._policy_of(obj).pk if change or isinstance(obj, EscalationStep) else None
        request._policy_before = policy_services.policy_state_get(policy_id=policy_id) if policy_id else None
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        policy_services.policy_change_record(
            policy=self._policy_of(form.instance), before=getattr(request, "_policy_before", None), actor=request.user
        )

    def delete_model(self, request, obj):
        if isinstance(obj, EscalationStep):
            policy = obj.policy
            before = policy_services.policy_state_get(policy_id=policy.pk)
            super().delete_model(request, obj)
            policy_services.policy_change_record(policy=policy, before=before, actor=request.user)
        else:
            super().delete_model(request, obj)


@admin.register(EscalationPolicy)
class EscalationPolicyAdmin(_PolicyAuditMixin, admin.ModelAdmin):
    list_display = ("name", "team", "repeat", "ack_timeout", "skip_empty_steps")
    list_filter = ("team",)
    search_fields = ("name", "team__name")
    list_select_related = ("team",)
    inlines = [EscalationStepInline]

    def _policy_of(self, obj) -> EscalationPolicy:
        return obj


class EscalationTargetInline(admin.TabularInline):
    model = EscalationTarget
    extra = 0


@admin.register(EscalationStep)
class EscalationStepAdmin(_PolicyAuditMixin, admin.ModelAdmin):
    list_display = ("policy", "order", "delay")
    list_select_related = ("policy__team",)
    inlines = [EscalationTargetInline]

    def _policy_of(self, obj) -> EscalationPolicy:
        return obj.policy


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


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = ("created_at", "channel", "kind", "to", "subject", "page", "incident")
    list_filter = ("channel", "kind")
    search_fields = ("to", "subject", "body")
    date_hierarchy = "created_at"
    raw_id_fields = ("page", "incident")
