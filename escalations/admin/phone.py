"""Admin for the emergency line: lines, menus, customers, blocked numbers and calls.

Forms call the same phone services as the portal and the API, so the admin validates alike."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from escalations.models import (
    BlockedNumber,
    CallRecord,
    CustomerContact,
    CustomerPhone,
    PhoneLine,
    PhoneMenuOption,
)
from escalations.phone import connect as phone_connect
from escalations.phone import directory as phone_directory
from escalations.phone import lines as phone_lines

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
                cleaned["connect_targets"] = phone_connect.phone_line_connect_targets_validate(
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
