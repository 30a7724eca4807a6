from django.contrib import admin

from rotations.models import (
    AuditEntry,
    Exclusion,
    Membership,
    Override,
    Rotation,
    RotationEra,
    RotationParticipant,
    Team,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "time_zone", "escalation_policy")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [MembershipInline]
    exclude = ("ical_token",)


class RotationEraInline(admin.StackedInline):
    model = RotationEra
    extra = 0
    show_change_link = True


@admin.register(Rotation)
class RotationAdmin(admin.ModelAdmin):
    list_display = ("name", "team", "time_zone", "positions")
    list_filter = ("team",)
    search_fields = ("name", "team__name")
    list_select_related = ("team",)
    inlines = [RotationEraInline]


class RotationParticipantInline(admin.TabularInline):
    model = RotationParticipant
    extra = 0
    ordering = ("order",)
    autocomplete_fields = ("user",)


@admin.register(RotationEra)
class RotationEraAdmin(admin.ModelAdmin):
    list_display = ("rotation", "effective_from", "start_date", "handoff_time", "shift_unit", "shift_length")
    list_filter = ("shift_unit", "rotation__team")
    list_select_related = ("rotation__team",)
    inlines = [RotationParticipantInline]


@admin.register(Exclusion)
class ExclusionAdmin(admin.ModelAdmin):
    list_display = ("user", "kind", "start", "end", "reason")
    list_filter = ("kind",)
    search_fields = ("user__email", "user__full_name", "reason")
    date_hierarchy = "start"
    list_select_related = ("user",)
    autocomplete_fields = ("user",)


@admin.register(Override)
class OverrideAdmin(admin.ModelAdmin):
    list_display = ("user", "rotation", "position", "replaces_user", "start", "end")
    list_filter = ("rotation__team",)
    search_fields = ("user__email", "user__full_name", "reason")
    date_hierarchy = "start"
    list_select_related = ("user", "rotation__team", "replaces_user")
    autocomplete_fields = ("user", "replaces_user")


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("at", "actor", "action", "object_type", "object_repr", "team")
    list_filter = ("action", "object_type", "team")
    search_fields = ("object_repr", "actor__email")
    date_hierarchy = "at"
    list_select_related = ("actor", "team")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
