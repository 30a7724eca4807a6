"""The customer directory: who may call the emergency line, with their numbers, and its CSV import.

A call counts as a known customer's only when its number is here (and the carrier attested it), so a
number belongs to one contact at most and is stored in E.164. The import is planned row by row first
(what would be created, updated, left unchanged or refused, and why); applying it re-plans inside one
transaction and writes nothing at all when any row is refused.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from escalations.models import CustomerContact, CustomerPhone
from escalations.phone.lines import phone_number_clean
from rotations.audit import audit_record, diff
from rotations.models import AuditEntry

MAX_IMPORT_BYTES = 1_000_000
MAX_IMPORT_ROWS = 5000
# Spreadsheet headers people write for each column.
COLUMNS = {
    "name": ("name", "contact", "contact name"),
    "organisation": ("company", "organisation", "organization"),
    "numbers": ("phone numbers", "phones", "phone", "numbers", "number"),
    "notes": ("notes", "note", "comment", "comments"),
}
NUMBER_SEPARATORS = re.compile(r"[;,|\n]+")


def _contact_state(contact: CustomerContact) -> dict[str, Any]:
    return {
        "organisation": contact.organisation,
        "name": contact.name,
        "notes": contact.notes,
        "numbers": sorted(contact.phones.values_list("number", flat=True)) if contact.pk else [],
    }


def customer_numbers_parse(raw: str | list[str]) -> list[str]:
    """Numbers separated by ';', ',', '|' or new lines, each cleaned to E.164; ValidationError on the first bad one."""
    parts = raw if isinstance(raw, list) else NUMBER_SEPARATORS.split(raw or "")
    numbers: list[str] = []
    for part in parts:
        if part.strip():
            number = phone_number_clean(part, field="numbers")
            if number not in numbers:
                numbers.append(number)
    return numbers


def _contact_check(
    *, organisation: str, name: str, notes: str, numbers: list[str], contact: CustomerContact | None
) -> tuple[str, str, str]:
    organisation, name, notes = (organisation or "").strip(), (name or "").strip(), (notes or "").strip()
    errors: dict[str, list[str]] = {}
    if not organisation:
        errors["organisation"] = ["Give the company."]
    elif len(organisation) > 200:
        errors["organisation"] = ["At most 200 characters."]
    if len(name) > 200:
        errors["name"] = ["At most 200 characters."]
    taken = CustomerPhone.objects.filter(number__in=numbers).select_related("contact")
    if contact is not None:
        taken = taken.exclude(contact=contact)
    for phone in taken:
        errors.setdefault("numbers", []).append(f"{phone.number} belongs to {phone.contact}.")
    if errors:
        raise ValidationError(errors)
    return organisation, name, notes


def _phones_set(contact: CustomerContact, numbers: list[str]) -> None:
    contact.phones.exclude(number__in=numbers).delete()
    existing = set(contact.phones.values_list("number", flat=True))
    CustomerPhone.objects.bulk_create(CustomerPhone(contact=contact, number=n) for n in numbers if n not in existing)


@transaction.atomic
def customer_create(
    *, actor: Any, organisation: str, name: str = "", notes: str = "", numbers: list[str]
) -> CustomerContact:
    numbers = customer_numbers_parse(numbers)
    organisation, name, notes = _contact_check(
        organisation=organisation, name=name, notes=notes, numbers=numbers, contact=None
    )
    contact = CustomerContact.objects.create(organisation=organisation, name=name, notes=notes)
    _phones_set(contact, numbers)
    audit_record(
        actor=actor, team=None, action=AuditEntry.Action.CREATE, obj=contact, changes=diff({}, _contact_state(contact))
    )
    return contact


@transaction.atomic
def customer_update(
    *, contact: CustomerContact, actor: Any, organisation: str, name: str, notes: str, numbers: list[str]
) -> CustomerContact:
    """Replace the contact's fields and its numbers with these."""
    contact = CustomerContact.objects.select_for_update().get(pk=contact.pk)
    numbers = customer_numbers_parse(numbers)
    organisation, name, notes = _contact_check(
        organisation=organisation, name=name, notes=notes, numbers=numbers, contact=contact
    )
    before = _contact_state(contact)
    contact.organisation, contact.name, contact.notes = organisation, name, notes
    contact.save(update_fields=["organisation", "name", "notes"])
    _phones_set(contact, numbers)
    changes = diff(before, _contact_state(contact))
    if changes:
        audit_record(actor=actor, team=None, action=AuditEntry.Action.UPDATE, obj=contact, changes=changes)
    return contact


@transaction.atomic
def customer_delete(*, contact: CustomerContact, actor: Any) -> None:
    """Delete the contact and its numbers; calls it made keep their record without it (SET_NULL)."""
    contact = CustomerContact.objects.select_for_update().get(pk=contact.pk)
    audit_record(
        actor=actor, team=None, action=AuditEntry.Action.DELETE, obj=contact, changes=diff(_contact_state(contact), {})
    )
    contact.delete()


# ------------------------------------------------------------------------------ CSV import


@dataclass
class ImportRow:
    line: int  # the row's line in the file (the header is line 1)
    action: str  # create / update / unchanged / refused
    organisation: str = ""
    name: str = ""
    notes: str = ""
    numbers: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    contact: CustomerContact | None = None


@dataclass
class ImportPlan:
    rows: list[ImportRow]

    def count(self, action: str) -> int:
        return sum(1 for row in self.rows if row.action == action)

    @property
    def summary(self) -> str:
        return ", ".join(f"{self.count(a)} {a}" for a in ("create", "update", "unchanged", "refused"))

    @property
    def refused(self) -> list[ImportRow]:
        return [row for row in self.rows if row.action == "refused"]


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        return data
    if len(data) > MAX_IMPORT_BYTES:
        raise ValidationError({"file": [f"The file is larger than {MAX_IMPORT_BYTES // 1000} kB."]})
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError({"file": ["The file is not UTF-8 text; save it as CSV UTF-8."]}) from None


def _header_map(header: list[str]) -> dict[str, int]:
    names = [h.strip().lower() for h in header]
    found: dict[str, int] = {}
    for column, aliases in COLUMNS.items():
        for index, name in enumerate(names):
            if name in aliases:
                found[column] = index
                break
    missing = [COLUMNS[c][0] for c in ("organisation", "numbers") if c not in found]
    if missing:
        raise ValidationError(
            {
                "file": [
                    f"The first row must name the columns; missing: {', '.join(missing)} (found: {', '.join(names)})."
                ]
            }
        )
    return found


def _row_plan(row: ImportRow, seen_numbers: dict[str, int], seen_keys: dict[tuple[str, str], int]) -> None:
    """Decide the row's action against the directory and the rows above it."""
    if not row.organisation:
        row.reasons.append("no company")
    if len(row.organisation) > 200 or len(row.name) > 200:
        row.reasons.append("company or name longer than 200 characters")
    if not row.numbers and not row.reasons:
        row.reasons.append("no phone number")
    for number in row.numbers:
        if number in seen_numbers:
            row.reasons.append(f"{number} is also on line {seen_numbers[number]}")
    key = (row.organisation.casefold(), row.name.casefold())
    if key in seen_keys:
        row.reasons.append(f"{row.organisation} / {row.name or '(no name)'} is also on line {seen_keys[key]}")
    if row.reasons:
        row.action = "refused"
        return
    for number in row.numbers:
        seen_numbers[number] = row.line
    seen_keys[key] = row.line
    _row_match(row)


def _row_match(row: ImportRow) -> None:
    # The same contact is found again by any of its numbers, else by company and name.
    owners = {
        p.contact_id: p.contact for p in CustomerPhone.objects.filter(number__in=row.numbers).select_related("contact")
    }
    if len(owners) > 1:
        row.action = "refused"
        row.reasons.append("its numbers belong to different contacts: " + ", ".join(str(c) for c in owners.values()))
        return
    contact = next(iter(owners.values()), None)
    if contact is None:
        contact = (
            CustomerContact.objects.filter(organisation__iexact=row.organisation, name__iexact=row.name)
            .order_by("pk")
            .first()
        )
    if contact is None:
        row.action = "create"
        return
    row.contact = contact
    current = _contact_state(contact)
    wanted = {**current, "organisation": row.organisation, "name": row.name, "notes": row.notes or contact.notes,
              "numbers": sorted(set(current["numbers"]) | set(row.numbers))}  # fmt: skip
    changes = diff(current, wanted)
    row.action = "update" if changes else "unchanged"
    if changes:
        row.reasons = [f"{field}: {old!r} → {new!r}" for field, (old, new) in changes.items()]


def customers_import_plan(*, data: bytes | str) -> ImportPlan:
    """What importing this CSV would do, row by row. ValidationError {"file": …} when it is not a usable CSV."""
    text = _decode(data)
    try:
        records = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise ValidationError({"file": [f"Not a CSV file: {exc}."]}) from None
    records = [r for r in records if any(cell.strip() for cell in r)]
    if not records:
        raise ValidationError({"file": ["The file is empty."]})
    if len(records) - 1 > MAX_IMPORT_ROWS:
        raise ValidationError({"file": [f"At most {MAX_IMPORT_ROWS} rows per file."]})
    columns = _header_map(records[0])
    plan = ImportPlan(rows=[])
    seen_numbers: dict[str, int] = {}
    seen_keys: dict[tuple[str, str], int] = {}

    def cell(record: list[str], column: str) -> str:
        index = columns.get(column)
        return record[index].strip() if index is not None and index < len(record) else ""

    for line, record in enumerate(records[1:], start=2):
        row = ImportRow(
            line=line,
            action="",
            organisation=cell(record, "organisation"),
            name=cell(record, "name"),
            notes=cell(record, "notes"),
        )
        for part in NUMBER_SEPARATORS.split(cell(record, "numbers")):
            if not part.strip():
                continue
            try:
                number = phone_number_clean(part)
            except ValidationError as exc:
                row.reasons.extend(exc.messages)
                continue
            if number not in row.numbers:
                row.numbers.append(number)
        _row_plan(row, seen_numbers, seen_keys)
        plan.rows.append(row)
    return plan


@transaction.atomic
def customers_import(*, data: bytes | str, actor: Any) -> ImportPlan:
    """Apply the import: every row or none. Re-importing the same file changes nothing (all unchanged).
    An update adds the row's numbers to the contact's (it never removes numbers)."""
    plan = customers_import_plan(data=data)
    if plan.refused:
        lines = ", ".join(str(row.line) for row in plan.refused)
        raise ValidationError({"file": [f"Nothing was imported: fix the refused rows first (lines {lines})."]})
    for row in plan.rows:
        if row.action == "create":
            customer_create(
                actor=actor, organisation=row.organisation, name=row.name, notes=row.notes, numbers=row.numbers
            )
        elif row.action == "update" and row.contact is not None:
            current = sorted(row.contact.phones.values_list("number", flat=True))
            customer_update(
                contact=row.contact,
                actor=actor,
                organisation=row.organisation,
                name=row.name,
                notes=row.notes or row.contact.notes,
                numbers=sorted(set(current) | set(row.numbers)),
            )
    return plan
