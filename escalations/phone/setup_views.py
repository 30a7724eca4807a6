"""Staff pages that set up the emergency line: lines and their menus, the block list, the customer
directory and its CSV import. Forms parse; the services in escalations.phone.lines and .directory
validate, write and audit (the admin calls the same services)."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from escalations.models import BlockedNumber, CustomerContact, EscalationPolicy, PhoneLine, PhoneMenuOption
from escalations.phone import directory, lines
from escalations.phone.views import staff_required
from portal.models import User
from rotations.models import Team

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WINDOW = re.compile(r"^\s*(?P<days>[A-Za-z,\- ]+?)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s*$")


def _errors_add(form: forms.BaseForm, exc: ValidationError) -> None:
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


# --------------------------------------------------------------------------- text <-> JSON fields


def _days_parse(text: str) -> list[int]:
    days: list[int] = []
    for part in text.lower().replace(" ", "").split(","):
        if "-" in part:
            first, _, last = part.partition("-")
            if first[:3] not in DAYS or last[:3] not in DAYS:
                raise ValueError(part)
            a, b = DAYS.index(first[:3]), DAYS.index(last[:3])
            days.extend(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
        elif part[:3] in DAYS:
            days.append(DAYS.index(part[:3]))
        else:
            raise ValueError(part)
    return sorted(set(days))


def business_hours_parse(text: str) -> list[dict[str, Any]]:
    """'Mon-Fri 08:00-18:00' per line into the line's windows (the service checks the times)."""
    windows = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        match = WINDOW.match(raw)
        try:
            if match is None:
                raise ValueError(raw)
            days = _days_parse(match["days"])
        except ValueError:
            raise ValidationError(
                f"Line {number}: write e.g. 'Mon-Fri 08:00-18:00' or 'Sat,Sun 10:00-14:00'."
            ) from None
        start, end = (t if len(t) == 5 else "0" + t for t in (match["start"], match["end"]))
        windows.append({"days": days, "start": start, "end": end})
    return windows


def business_hours_text(windows: list[dict[str, Any]]) -> str:
    out = []
    for window in windows or []:
        days = ",".join(DAYS[d].capitalize() for d in window.get("days", range(7)) if 0 <= d <= 6)
        out.append(f"{days} {window.get('start')}-{window.get('end')}")
    return "\n".join(out)


def connect_targets_parse(text: str) -> list[dict[str, str | int]]:
    """One target per line: a rotation position ('primary') or a person's e-mail address."""
    targets: list[dict[str, str | int]] = []
    for raw in text.splitlines():
        value = raw.strip()
        if not value:
            continue
        if "@" in value:
            user = User.objects.filter(email__iexact=value).first()
            if user is None:
                raise ValidationError(f"Nobody has the address {value}.")
            targets.append({"user": user.pk})
        else:
            targets.append({"position": value})
    return targets


def connect_targets_text(targets: list[dict[str, Any]]) -> str:
    ids = [t["user"] for t in targets or [] if isinstance(t, dict) and "user" in t]
    emails = dict(User.objects.filter(pk__in=ids).values_list("pk", "email"))
    out = []
    for target in targets or []:
        if "position" in target:
            out.append(str(target["position"]))
        elif "user" in target:
            out.append(emails.get(target["user"], f"(user {target['user']})"))
    return "\n".join(out)


# --------------------------------------------------------------------------------------- lines


class PhoneLineForm(forms.ModelForm):
    business_hours_text = forms.CharField(
        label="Business hours",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One window per line in the line's time zone, e.g. 'Mon-Fri 08:00-18:00'. Empty: always.",
    )
    connect_targets_text = forms.CharField(
        label="Connect-now targets",
        widget=forms.Textarea(attrs={"rows": 3}),
        initial="primary\nsecondary",
        help_text="Rung in order, one per line: a position of the team's rotations (primary) or a member's e-mail.",
    )

    class Meta:
        model = PhoneLine
        fields = [
            "number",
            "name",
            "team",
            "policy",
            "enabled",
            "greeting",
            "thank_you_message",
            "language",
            "voice",
            "max_recording_seconds",
            "time_zone",
            "business_hours_message",
            "menu_enabled",
            "menu_prompt",
            "connect_now_enabled",
            "connect_timeout_seconds",
            "sms_confirmation",
            "max_calls_per_number_per_hour",
            "max_calls_per_line_per_hour",
        ]
        widgets = {
            "greeting": forms.Textarea(attrs={"rows": 3}),
            "thank_you_message": forms.Textarea(attrs={"rows": 2}),
            "business_hours_message": forms.Textarea(attrs={"rows": 2}),
            "menu_prompt": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["number"].validators = []  # the service parses it (any spelling of an international number)
        policy_field = self.fields["policy"]
        assert isinstance(policy_field, forms.ModelChoiceField)
        policy_field.queryset = EscalationPolicy.objects.select_related("team").order_by("team__name", "name")
        if self.instance.pk:
            self.initial["business_hours_text"] = business_hours_text(self.instance.business_hours)
            self.initial["connect_targets_text"] = connect_targets_text(self.instance.connect_targets)

    def _post_clean(self) -> None:
        # The model's own validation runs in the service, with the rest of the line's checks.
        pass

    def clean_business_hours_text(self) -> list[dict[str, Any]]:
        return business_hours_parse(self.cleaned_data.get("business_hours_text", ""))

    def clean_connect_targets_text(self) -> list[dict[str, str | int]]:
        return connect_targets_parse(self.cleaned_data.get("connect_targets_text", ""))

    def fields_for_service(self) -> dict[str, Any]:
        data = {name: self.cleaned_data[name] for name in self.Meta.fields}
        data["business_hours"] = self.cleaned_data["business_hours_text"]
        data["connect_targets"] = self.cleaned_data["connect_targets_text"]
        return data

    def add_service_errors(self, exc: ValidationError) -> None:
        renamed = {"business_hours": "business_hours_text", "connect_targets": "connect_targets_text"}
        if hasattr(exc, "error_dict"):
            exc = ValidationError({renamed.get(k, k): v for k, v in exc.message_dict.items()})
        _errors_add(self, exc)


class MenuOptionForm(forms.Form):
    digit = forms.IntegerField(min_value=1, max_value=9, help_text="1 to 9 (0 is 'connect me now')")
    label = forms.CharField(max_length=100, help_text="Said as 'For <label>, press <digit>'")
    team = forms.ModelChoiceField(queryset=Team.objects.order_by("name"))
    policy = forms.ModelChoiceField(
        queryset=EscalationPolicy.objects.select_related("team").order_by("team__name", "name"),
        required=False,
        help_text="Empty: the team's default policy",
    )


@staff_required
@require_GET
def line_list(request: HttpRequest) -> HttpResponse:
    lines_ = PhoneLine.objects.select_related("team", "policy").prefetch_related("menu_options__team")
    return render(request, "phone/lines.html", {"lines": lines_})


@staff_required
@require_http_methods(["GET", "POST"])
def line_new(request: HttpRequest) -> HttpResponse:
    form = PhoneLineForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            line = lines.phone_line_create(actor=request.user, **form.fields_for_service())
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, f"Line {line} created.")
            return redirect("calls:line", line.pk)
    return render(request, "phone/line_form.html", {"form": form, "line": None}, status=400 if form.errors else 200)


@staff_required
@require_http_methods(["GET", "POST"])
def line_edit(request: HttpRequest, pk: int) -> HttpResponse:
    line = get_object_or_404(PhoneLine.objects.select_related("team"), pk=pk)
    form = PhoneLineForm(request.POST or None, instance=PhoneLine.objects.get(pk=pk))
    if request.method == "POST" and form.is_valid():
        try:
            lines.phone_line_update(line=line, actor=request.user, **form.fields_for_service())
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, "Line saved.")
            return redirect("calls:line", line.pk)
    options = line.menu_options.select_related("team", "policy")
    context = {"form": form, "line": line, "options": options, "option_form": MenuOptionForm()}
    return render(request, "phone/line_form.html", context, status=400 if form.errors else 200)


def _option_fields(form: MenuOptionForm) -> dict[str, Any]:
    return {k: form.cleaned_data[k] for k in ("digit", "label", "team", "policy")}


@staff_required
@require_POST
def option_new(request: HttpRequest, pk: int) -> HttpResponse:
    line = get_object_or_404(PhoneLine, pk=pk)
    form = MenuOptionForm(request.POST)
    if form.is_valid():
        try:
            lines.phone_menu_option_create(line=line, actor=request.user, **_option_fields(form))
        except ValidationError as exc:
            _errors_add(form, exc)
        else:
            messages.success(request, "Menu option added.")
            return redirect("calls:line", line.pk)
    return render(request, "phone/option_form.html", {"form": form, "line": line, "option": None}, status=400)


@staff_required
@require_http_methods(["GET", "POST"])
def option_edit(request: HttpRequest, pk: int, option: int) -> HttpResponse:
    line = get_object_or_404(PhoneLine, pk=pk)
    obj = get_object_or_404(PhoneMenuOption, pk=option, line=line)
    initial = {"digit": obj.digit, "label": obj.label, "team": obj.team_id, "policy": obj.policy_id}
    form = MenuOptionForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            lines.phone_menu_option_update(option=obj, actor=request.user, **_option_fields(form))
        except ValidationError as exc:
            _errors_add(form, exc)
        else:
            messages.success(request, "Menu option saved.")
            return redirect("calls:line", line.pk)
    context = {"form": form, "line": line, "option": obj}
    return render(request, "phone/option_form.html", context, status=400 if form.errors else 200)


@staff_required
@require_POST
def option_delete(request: HttpRequest, pk: int, option: int) -> HttpResponse:
    obj = get_object_or_404(PhoneMenuOption, pk=option, line_id=pk)
    lines.phone_menu_option_delete(option=obj, actor=request.user)
    messages.success(request, "Menu option removed.")
    return redirect("calls:line", pk)


# ---------------------------------------------------------------------------------- block list


class BlockForm(forms.Form):
    number = forms.CharField(max_length=32, help_text="International format, e.g. +15550100999")
    reason = forms.CharField(max_length=200, required=False)


@staff_required
@require_http_methods(["GET", "POST"])
def blocked_list(request: HttpRequest) -> HttpResponse:
    form = BlockForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            blocked = lines.blocked_number_add(
                number=form.cleaned_data["number"], reason=form.cleaned_data["reason"], actor=request.user
            )
        except ValidationError as exc:
            _errors_add(form, exc)
        else:
            messages.success(request, f"{blocked.number} is blocked.")
            return redirect("calls:blocked")
    blocked_numbers = BlockedNumber.objects.select_related("created_by")
    context = {"form": form, "blocked": blocked_numbers}
    return render(request, "phone/blocked.html", context, status=400 if form.errors else 200)


@staff_required
@require_POST
def blocked_remove(request: HttpRequest, pk: int) -> HttpResponse:
    blocked = get_object_or_404(BlockedNumber, pk=pk)
    lines.blocked_number_remove(blocked=blocked, actor=request.user)
    messages.success(request, f"{blocked.number} is no longer blocked.")
    return redirect("calls:blocked")


# ----------------------------------------------------------------------------------- directory


class CustomerForm(forms.Form):
    organisation = forms.CharField(label="Company", max_length=200)
    name = forms.CharField(max_length=200, required=False)
    numbers = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        help_text="International format, one per line (or separated by ';')",
    )
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)

    def clean_numbers(self) -> list[str]:
        try:
            return directory.customer_numbers_parse(self.cleaned_data.get("numbers", ""))
        except ValidationError as exc:
            raise ValidationError(exc.messages) from None


@staff_required
@require_GET
def directory_list(request: HttpRequest) -> HttpResponse:
    contacts = CustomerContact.objects.prefetch_related("phones")
    query = request.GET.get("q", "").strip()
    if query:
        contacts = (
            contacts.filter(organisation__icontains=query)
            | contacts.filter(name__icontains=query)
            | contacts.filter(phones__number__icontains=query)
        )
        contacts = contacts.distinct()
    return render(request, "phone/directory.html", {"contacts": contacts, "q": query})


@staff_required
@require_http_methods(["GET", "POST"])
def customer_new(request: HttpRequest) -> HttpResponse:
    form = CustomerForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            contact = directory.customer_create(actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            _errors_add(form, exc)
        else:
            messages.success(request, f"{contact} added to the directory.")
            return redirect("calls:directory")
    return render(
        request, "phone/customer_form.html", {"form": form, "contact": None}, status=400 if form.errors else 200
    )


@staff_required
@require_http_methods(["GET", "POST"])
def customer_edit(request: HttpRequest, pk: int) -> HttpResponse:
    contact = get_object_or_404(CustomerContact, pk=pk)
    initial = {
        "organisation": contact.organisation,
        "name": contact.name,
        "notes": contact.notes,
        "numbers": "\n".join(contact.phones.values_list("number", flat=True)),
    }
    form = CustomerForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            directory.customer_update(contact=contact, actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            _errors_add(form, exc)
        else:
            messages.success(request, f"{contact} saved.")
            return redirect("calls:directory")
    context = {"form": form, "contact": contact}
    return render(request, "phone/customer_form.html", context, status=400 if form.errors else 200)


@staff_required
@require_POST
def customer_delete(request: HttpRequest, pk: int) -> HttpResponse:
    contact = get_object_or_404(CustomerContact, pk=pk)
    directory.customer_delete(contact=contact, actor=request.user)
    messages.success(request, f"{contact} removed from the directory.")
    return redirect("calls:directory")


class ImportForm(forms.Form):
    file = forms.FileField(required=False, help_text="CSV with a header row: name, company, phone numbers, notes")
    # The previewed file, sent back with "Import" so what is applied is exactly what was shown.
    content = forms.CharField(required=False, widget=forms.HiddenInput)

    def csv_data(self) -> bytes | str:
        upload = self.cleaned_data.get("file")
        if upload is not None:
            if upload.size > directory.MAX_IMPORT_BYTES:
                raise ValidationError({"file": ["The file is larger than 1000 kB."]})
            return upload.read()
        if self.cleaned_data.get("content"):
            return self.cleaned_data["content"]
        raise ValidationError({"file": ["Choose a CSV file."]})


def _plan_or_none(form: ImportForm) -> directory.ImportPlan | None:
    """The preview to show next to an import that was refused, when the file itself is readable."""
    content = form.cleaned_data.get("content")
    if not content:
        return None
    try:
        return directory.customers_import_plan(data=content)
    except ValidationError:
        return None


@staff_required
@require_http_methods(["GET", "POST"])
def directory_import(request: HttpRequest) -> HttpResponse:
    form = ImportForm(request.POST if request.method == "POST" else None, request.FILES or None)
    plan = None
    content = ""
    if request.method == "POST" and form.is_valid():
        try:
            data = form.csv_data()
            if request.POST.get("apply") and form.cleaned_data.get("content"):
                plan = directory.customers_import(data=data, actor=request.user)
                messages.success(
                    request,
                    f"Imported: {plan.count('create')} created, {plan.count('update')} updated, "
                    f"{plan.count('unchanged')} unchanged.",
                )
                return redirect("calls:directory")
            plan = directory.customers_import_plan(data=data)
            content = data.decode("utf-8-sig") if isinstance(data, bytes) else data
        except ValidationError as exc:
            _errors_add(form, exc)
            plan = _plan_or_none(form)
            content = form.cleaned_data.get("content") or ""
    context = {"form": form, "plan": plan, "content": content}
    return render(request, "phone/import.html", context, status=400 if form.errors else 200)
