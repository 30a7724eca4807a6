from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from escalations.intake import services as intake_services
from escalations.models import (
    Alert,
    AlertGroupMember,
    BlockedNumber,
    CallRecord,
    ChangeEvent,
    CustomerContact,
    CustomerPhone,
    EscalationPolicy,
    EscalationStep,
    EscalationTarget,
    Heartbeat,
    InboxEvent,
    Incident,
    Integration,
    MaintenanceWindow,
    OutboxMessage,
    Page,
    PhoneLine,
    PhoneMenuOption,
    TimelineEvent,
)
from escalations.phone import directory as phone_directory
from escalations.phone import lines as phone_lines
from escalations.phone import services as phone_services
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


# ------------------------------------------------------------------------- emergency line


# Lines, menu options, customers and blocked numbers are written through escalations.phone.lines and
# .directory, like the portal's /calls/ pages: the forms run the services' checks (a refusal is a form
# error) and saving or deleting calls the service, which audits.


def _phone_errors_add(form: forms.BaseForm, exc: ValidationError) -> None:
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


class PhoneMenuOptionForm(forms.ModelForm):
    class Meta:
        model = PhoneMenuOption
        fields = ["digit", "label", "team", "policy"]

    def validate_unique(self) -> None:
        # The service checks the line's digits with a field error of its own.
        pass

    def clean(self):
        cleaned = super().clean()
        if not self.errors and not cleaned.get("DELETE"):
            line = self.instance.line if self.instance.line_id else None
            fields = {k: cleaned.get(k) for k in phone_lines.MENU_FIELDS}
            try:
                phone_lines.phone_menu_option_check(
                    line=line, fields=fields, option=self.instance if self.instance.pk else None
                )
            except ValidationError as exc:
                _phone_errors_add(self, exc)
        return cleaned


class PhoneMenuOptionInline(admin.TabularInline):
    model = PhoneMenuOption
    form = PhoneMenuOptionForm
    extra = 0


class PhoneLineAdminForm(forms.ModelForm):
    class Meta:
        model = PhoneLine
        fields = "__all__"  # noqa: DJ007 - the admin edits every field of a line

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("team") is not None and not self.errors:
            fields = {k: cleaned[k] for k in phone_lines.LINE_FIELDS if k in cleaned}
            try:
                phone_lines.phone_line_check(fields=fields, line=self.instance if self.instance.pk else None)
            except ValidationError as exc:
                _phone_errors_add(self, exc)
            else:
                cleaned["connect_targets"] = phone_services.phone_line_connect_targets_validate(
                    team=cleaned["team"], targets=cleaned.get("connect_targets")
                )
                if "number" in cleaned:
                    cleaned["number"] = phone_lines.phone_number_clean(cleaned["number"])
        return cleaned


@admin.register(PhoneLine)
class PhoneLineAdmin(admin.ModelAdmin):
    form = PhoneLineAdminForm
    list_display = (
        "name",
        "number",
        "team",
        "policy",
        "menu_enabled",
        "connect_now_enabled",
        "sms_confirmation",
        "enabled",
    )
    list_filter = ("enabled", "team", "menu_enabled")
    search_fields = ("name", "number", "team__name")
    list_select_related = ("team", "policy")
    inlines = [PhoneMenuOptionInline]

    def delete_model(self, request, obj):
        phone_lines.phone_line_delete(line=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)

    def save_model(self, request, obj, form, change):
        fields = {k: form.cleaned_data[k] for k in phone_lines.LINE_FIELDS if k in form.cleaned_data}
        if change:
            saved = phone_lines.phone_line_update(line=obj, actor=request.user, **fields)
        else:
            saved = phone_lines.phone_line_create(actor=request.user, **fields)
        obj.pk = saved.pk
        obj._state.adding = False
        obj.refresh_from_db()

    def save_formset(self, request, form, formset, change):
        line = form.instance
        # What the admin's change message reads (formset.save() would have set these).
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for option_form in formset.forms:
            option = option_form.instance
            data = option_form.cleaned_data
            if not data:
                continue
            if data.get("DELETE"):
                if option.pk:
                    phone_lines.phone_menu_option_delete(option=option, actor=request.user)
                    formset.deleted_objects.append(option)
                continue
            if not option_form.has_changed():
                continue
            fields = {k: data.get(k) for k in phone_lines.MENU_FIELDS}
            if option.pk:
                saved = phone_lines.phone_menu_option_update(option=option, actor=request.user, **fields)
                formset.changed_objects.append((saved, option_form.changed_data))
            else:
                saved = phone_lines.phone_menu_option_create(line=line, actor=request.user, **fields)
                formset.new_objects.append(saved)


class CustomerContactAdminForm(forms.ModelForm):
    numbers = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        help_text="International format, one per line (or separated by ';')",
    )

    class Meta:
        model = CustomerContact
        fields = ["organisation", "name", "numbers", "notes"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["numbers"] = "\n".join(self.instance.phones.values_list("number", flat=True))

    def clean_numbers(self) -> list[str]:
        try:
            return phone_directory.customer_numbers_parse(self.cleaned_data.get("numbers", ""))
        except ValidationError as exc:
            raise ValidationError(exc.messages) from None

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            taken = CustomerPhone.objects.filter(number__in=cleaned.get("numbers") or []).select_related("contact")
            if self.instance.pk:
                taken = taken.exclude(contact=self.instance)
            for phone in taken:
                self.add_error("numbers", f"{phone.number} belongs to {phone.contact}.")
        return cleaned


@admin.register(CustomerContact)
class CustomerContactAdmin(admin.ModelAdmin):
    form = CustomerContactAdminForm
    list_display = ("organisation", "name", "phone_numbers", "created_at")
    search_fields = ("organisation", "name", "phones__number", "notes")

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("phones")

    @admin.display(description="Numbers")
    def phone_numbers(self, obj) -> str:
        return ", ".join(p.number for p in obj.phones.all())

    def save_model(self, request, obj, form, change):
        data = {k: form.cleaned_data[k] for k in ("organisation", "name", "notes", "numbers")}
        if change:
            saved = phone_directory.customer_update(contact=obj, actor=request.user, **data)
        else:
            saved = phone_directory.customer_create(actor=request.user, **data)
        obj.pk = saved.pk
        obj._state.adding = False
        obj.refresh_from_db()

    def delete_model(self, request, obj):
        phone_directory.customer_delete(contact=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


@admin.register(CustomerPhone)
class CustomerPhoneAdmin(admin.ModelAdmin):
    """Read-only: a contact's numbers are edited on the contact (one write path, audited)."""

    list_display = ("number", "contact")
    search_fields = ("number", "contact__organisation", "contact__name")
    list_select_related = ("contact",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class BlockedNumberAdminForm(forms.ModelForm):
    class Meta:
        model = BlockedNumber
        fields = ["number", "reason"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "number" in self.fields:
            self.fields["number"].validators = []

    def validate_unique(self) -> None:
        pass

    def _post_clean(self) -> None:
        # The service normalises and checks the number (any spelling of an international number).
        pass

    def clean(self):
        cleaned = super().clean()
        if "number" in cleaned:
            try:
                cleaned["number"] = phone_lines.phone_number_clean(cleaned["number"])
            except ValidationError as exc:
                _phone_errors_add(self, exc)
            else:
                if BlockedNumber.objects.filter(number=cleaned["number"]).exclude(pk=self.instance.pk).exists():
                    self.add_error("number", f"{cleaned['number']} is already blocked.")
        return cleaned


@admin.register(BlockedNumber)
class BlockedNumberAdmin(admin.ModelAdmin):
    form = BlockedNumberAdminForm
    list_display = ("number", "reason", "created_by", "created_at")
    search_fields = ("number", "reason")
    list_select_related = ("created_by",)

    def has_change_permission(self, request, obj=None) -> bool:
        # Unblock and block again: both are audited.
        return False

    def save_model(self, request, obj, form, change):
        saved = phone_lines.blocked_number_add(
            number=form.cleaned_data["number"], reason=form.cleaned_data.get("reason", ""), actor=request.user
        )
        obj.pk = saved.pk
        obj._state.adding = False
        obj.refresh_from_db()

    def delete_model(self, request, obj):
        phone_lines.blocked_number_remove(blocked=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


@admin.register(CallRecord)
class CallRecordAdmin(admin.ModelAdmin):
    list_display = (
        "reference",
        "started_at",
        "line",
        "from_number",
        "caller_verified",
        "customer_contact",
        "menu_digit",
        "outcome",
        "recording_duration",
        "transcript_status",
        "incident",
        "sms_status",
    )
    list_filter = ("outcome", "transcript_status", "caller_verified", "line", "simulated")
    search_fields = (
        "reference",
        "call_sid",
        "from_number",
        "to_number",
        "transcript",
        "customer_contact__organisation",
    )
    date_hierarchy = "started_at"
    list_select_related = ("line", "customer_contact", "incident")
    raw_id_fields = ("incident", "customer_contact", "connected_to")
    readonly_fields = ("call_sid", "events", "recording_sid", "recording_url")


# ------------------------------------------------------------------- intake configuration
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
