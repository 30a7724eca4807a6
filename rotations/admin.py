from django import forms
from django.contrib import admin

from rotations import audit
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
from rotations.services import exclusions, overrides, validation
from rotations.services import rotations as services_rotations


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)


class TeamAdminForm(forms.ModelForm):
    class Meta:
        model = Team
        fields = ("name", "slug", "description", "time_zone", "handover_email", "escalation_policy")

    def clean_name(self) -> str:
        try:
            return validation.validate_team_name(self.cleaned_data["name"])
        except forms.ValidationError as exc:
            raise forms.ValidationError(exc.message_dict["name"]) from None


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    form = TeamAdminForm
    list_display = ("name", "slug", "time_zone", "escalation_policy")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [MembershipInline]
    exclude = ("ical_token",)


class RotationEraInline(admin.StackedInline):
    model = RotationEra
    extra = 0
    show_change_link = True


class RotationAdminForm(forms.ModelForm):
    class Meta:
        model = Rotation
        fields = ("team", "name", "time_zone", "positions")

    def clean(self):
        data = super().clean()
        if data.get("time_zone"):
            validation.validate_time_zone(data["time_zone"])
        if "positions" in data:
            data["positions"] = validation.validate_positions(data["positions"])
        return data


@admin.register(Rotation)
class RotationAdmin(admin.ModelAdmin):
    """Saves go through the services so every change is validated and audited."""

    form = RotationAdminForm
    list_display = ("name", "team", "time_zone", "positions")
    list_filter = ("team",)
    search_fields = ("name", "team__name")
    list_select_related = ("team",)
    inlines = [RotationEraInline]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.save()
            audit.audit_record(
                actor=request.user,
                team=obj.team,
                action=AuditEntry.Action.CREATE,
                obj=obj,
                changes={
                    "name": [None, obj.name],
                    "time_zone": [None, obj.time_zone],
                    "positions": [None, obj.positions],
                },
            )
            return
        original = Rotation.objects.get(pk=obj.pk)
        if original.time_zone != obj.time_zone or original.team_id != obj.team_id:
            # Staff-only corrections (admin): recorded, not routed through rotation_update which forbids them.
            Rotation.objects.filter(pk=obj.pk).update(time_zone=obj.time_zone, team=obj.team)
            audit.audit_record(
                actor=request.user,
                team=obj.team,
                action=AuditEntry.Action.UPDATE,
                obj=obj,
                changes=audit.diff(
                    {"time_zone": original.time_zone, "team": original.team_id},
                    {"time_zone": obj.time_zone, "team": obj.team_id},
                ),
            )
            original.refresh_from_db()
        services_rotations.rotation_update(
            rotation=original, actor=request.user, name=obj.name, positions=obj.positions
        )

    def delete_model(self, request, obj):
        services_rotations.rotation_delete(rotation=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


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


class ExclusionAdminForm(forms.ModelForm):
    class Meta:
        model = Exclusion
        fields = ("user", "start", "end", "kind", "reason")

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end"):
            validation.validate_span(data["start"], data["end"])
        return data


@admin.register(Exclusion)
class ExclusionAdmin(admin.ModelAdmin):
    form = ExclusionAdminForm
    list_display = ("user", "kind", "start", "end", "reason")
    list_filter = ("kind",)
    search_fields = ("user__email", "user__full_name", "reason")
    date_hierarchy = "start"
    list_select_related = ("user",)
    autocomplete_fields = ("user",)

    def save_model(self, request, obj, form, change):
        fields = {"start": obj.start, "end": obj.end, "kind": obj.kind, "reason": obj.reason}
        if change:
            exclusions.exclusion_update(exclusion=Exclusion.objects.get(pk=obj.pk), actor=request.user, **fields)
        else:
            obj.pk = exclusions.exclusion_create(user=obj.user, actor=request.user, **fields).pk

    def delete_model(self, request, obj):
        exclusions.exclusion_delete(exclusion=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


class OverrideAdminForm(forms.ModelForm):
    class Meta:
        model = Override
        fields = ("rotation", "user", "start", "end", "position", "replaces_user", "reason")

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        overrides.override_conflicts_check(
            rotation=data["rotation"],
            user=data["user"],
            start=data["start"],
            end=data["end"],
            position=data.get("position") or None,
            replaces_user=data.get("replaces_user"),
            exclude_pk=self.instance.pk,
        )
        return data


@admin.register(Override)
class OverrideAdmin(admin.ModelAdmin):
    list_display = ("user", "rotation", "position", "replaces_user", "start", "end")
    list_filter = ("rotation__team",)
    search_fields = ("user__email", "user__full_name", "reason")
    date_hierarchy = "start"
    list_select_related = ("user", "rotation__team", "replaces_user")
    autocomplete_fields = ("user", "replaces_user")
    form = OverrideAdminForm

    def save_model(self, request, obj, form, change):
        fields = {
            "user": obj.user,
            "start": obj.start,
            "end": obj.end,
            "position": obj.position or None,
            "replaces_user": obj.replaces_user,
            "reason": obj.reason,
        }
        if change:
            overrides.override_update(override=Override.objects.get(pk=obj.pk), actor=request.user, **fields)
        else:
            obj.pk = overrides.override_create(rotation=obj.rotation, actor=request.user, **fields).pk

    def delete_model(self, request, obj):
        overrides.override_delete(override=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


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
