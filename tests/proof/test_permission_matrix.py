"""The permission matrix: every role against every endpoint and portal action, in one table.

Roles: anonymous, an outsider in no team, the team's viewer, engineer and manager, staff, and a
manager and an engineer *of another team* (who meet this team only through ids they put in bodies).
The outbox rows run again with Twilio not configured (outbox mode), and the tests at the end send
bodies naming people, policies and rosters of another team: each must be refused with a field error.

Every URL pattern of the project must be decided here — a role-checked row in MATRIX, or an explicit
entry in NOT_ROLE_CHECKED (authenticated by signature, key or token, or public) — so a new endpoint
without a permission decision fails `test_every_url_pattern_has_a_permission_decision`.

Each row is one request (method, URL built from the shared world, body); the expectation gives, per
role, the status class: "ok" (2xx, or a redirect that is not to the login page), "ok|400" (got past
the permission check: ok or a form/validation error), "login" (redirect to sign-in), "admin-login",
or an exact status (401, 403, 404). Each role's request runs in a savepoint that is rolled back, so
every role meets the same world.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.contrib import admin
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from escalations.models import (
    BlockedNumber,
    CallRecord,
    CustomerContact,
    OutboxMessage,
    PhoneLine,
    PhoneMenuOption,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)
from escalations.webhooks import signing
from portal.models import ApiToken, ContactMethod
from rotations.models import Exclusion, Override, Rotation, RotationEra
from tests.escalations.api_helpers import api_client
from tests.factories import (
    T0,
    ContactMethodFactory,
    EscalationPolicyFactory,
    ExclusionFactory,
    HeartbeatFactory,
    IntegrationFactory,
    MaintenanceWindowFactory,
    MembershipFactory,
    NotificationRuleFactory,
    OverrideFactory,
    RotationEraFactory,
    RotationFactory,
    TeamFactory,
)

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "outsider", "viewer", "engineer", "manager", "staff", "other_manager", "other_engineer")


def E(anonymous, outsider, viewer, engineer, manager, staff, *, other_manager=None, other_engineer=None) -> dict:
    """Expectations per role. The other team's manager and engineer are, to this team, outsiders: by
    default they expect what the outsider expects."""
    other_manager = outsider if other_manager is None else other_manager
    other_engineer = outsider if other_engineer is None else other_engineer
    return dict(
        zip(ROLES, (anonymous, outsider, viewer, engineer, manager, staff, other_manager, other_engineer), strict=True)
    )


# Profiles used by many rows.
API_READ_ALL = E(401, "ok", "ok", "ok", "ok", "ok")  # scoped lists: everyone signed in
API_READ_TEAM = E(401, 404, "ok", "ok", "ok", "ok")  # an object of the team
API_MANAGE = E(401, 404, 403, 403, "ok", "ok")  # change a team's object
API_WORK = E(401, 404, 403, "ok", "ok", "ok")  # work an incident
API_CREATE_MANAGED = E(401, 403, 403, 403, "ok", "ok")  # create for a team you do not see: refused
API_STAFF_ONLY = E(401, 403, 403, 403, 403, "ok")
API_OWN = E(401, 404, 404, "ok", 404, 404)  # the engineer's own token: nobody else's business
PAGE_ALL = E("login", "ok", "ok", "ok", "ok", "ok")
PAGE_TEAM = E("login", 404, "ok", "ok", "ok", "ok")
PAGE_MANAGE = E("login", 404, 403, 403, "ok", "ok")
PAGE_MANAGE_POST = E("login", 404, 403, 403, "ok|400", "ok|400")
PAGE_WORK = E("login", 404, 403, "ok", "ok", "ok")
PAGE_OWN = E("login", 404, 404, "ok", 404, 404)
PAGE_STAFF = E("login", 403, 403, 403, 403, "ok")
PAGE_STAFF_POST = E("login", 403, 403, 403, 403, "ok|400")
ADMIN = E("admin-login", "admin-login", "admin-login", "admin-login", "admin-login", "ok")
# Staff may do everything: every admin model page opens for staff (portal.auth_backends), for nobody else.
ADMIN_MODEL = E("admin-login", "admin-login", "admin-login", "admin-login", "admin-login", "ok")


@dataclass(frozen=True)
class Row:
    name: str  # URL name, namespaced ("portal:incident")
    method: str
    path: str  # format string over the world: "/incidents/{incident}/"
    expect: dict
    data: dict | None = None
    api: bool = False

    @property
    def id(self) -> str:
        return f"{self.method} {self.name}"


def _soon(hours: int) -> str:
    return (timezone.now() + timedelta(hours=hours)).isoformat()


# ---- Outgoing webhooks: the team's managers and staff only, reads included (URLs and delivery logs are the
# team's configuration). Through the API the team's engineers and viewers do not see them at all (404).
API_WEBHOOK = E(401, 404, 404, 404, "ok", "ok")
WEBHOOK_BODY = {"team": "{team}", "url": "https://93.184.216.34/hook", "events": ["incident.resolved"]}
WEBHOOK_MATRIX = [
    Row("portal:webhooks", "GET", "/teams/{team_slug}/webhooks/", PAGE_MANAGE),
    Row("portal:webhook_create", "GET", "/teams/{team_slug}/webhooks/new", PAGE_MANAGE),
    Row(
        "portal:webhook_create",
        "POST",
        "/teams/{team_slug}/webhooks/new",
        PAGE_MANAGE,
        {"url": "https://93.184.216.34/hook", "events": ["incident.triggered"]},
    ),
    Row("portal:webhook", "GET", "/teams/{team_slug}/webhooks/{webhook}/", PAGE_MANAGE),
    Row("portal:webhook_edit", "GET", "/teams/{team_slug}/webhooks/{webhook}/edit", PAGE_MANAGE),
    Row("portal:webhook_ping", "POST", "/teams/{team_slug}/webhooks/{webhook}/ping", PAGE_MANAGE),
    Row(
        "portal:webhook_edit",
        "POST",
        "/teams/{team_slug}/webhooks/{webhook}/edit",
        PAGE_MANAGE,
        {"url": "https://93.184.216.34/other", "events": ["incident.resolved"]},
    ),
    Row(
        "portal:webhook_enabled", "POST", "/teams/{team_slug}/webhooks/{webhook}/enabled", PAGE_MANAGE, {"enabled": "0"}
    ),
    Row(
        "portal:webhook_rotate", "POST", "/teams/{team_slug}/webhooks/{webhook}/rotate", PAGE_MANAGE, {"confirm": "on"}
    ),
    Row(
        "portal:webhook_delete", "POST", "/teams/{team_slug}/webhooks/{webhook}/delete", PAGE_MANAGE, {"confirm": "on"}
    ),
    Row(
        "portal:webhook_resend",
        "POST",
        "/teams/{team_slug}/webhooks/{webhook}/deliveries/{webhook_delivery}/resend",
        PAGE_MANAGE,
    ),
    Row("webhook-list", "GET", "/api/v1/webhooks/", API_READ_ALL, api=True),
    Row("webhook-list", "POST", "/api/v1/webhooks/", API_CREATE_MANAGED, WEBHOOK_BODY, api=True),
    Row("webhook-detail", "GET", "/api/v1/webhooks/{webhook}/", API_WEBHOOK, api=True),
    Row("webhook-detail", "PATCH", "/api/v1/webhooks/{webhook}/", API_WEBHOOK, {"description": "chat"}, api=True),
    Row("webhook-detail", "PUT", "/api/v1/webhooks/{webhook}/", API_WEBHOOK, WEBHOOK_BODY, api=True),
    Row("webhook-detail", "DELETE", "/api/v1/webhooks/{webhook}/", API_WEBHOOK, api=True),
    Row("webhook-rotate-secret", "POST", "/api/v1/webhooks/{webhook}/rotate-secret/", API_WEBHOOK, api=True),
    Row("webhook-deliveries", "GET", "/api/v1/webhooks/{webhook}/deliveries/", API_WEBHOOK, api=True),
    Row("webhook-ping", "POST", "/api/v1/webhooks/{webhook}/ping/", API_WEBHOOK, api=True),
    Row(
        "webhook-resend",
        "POST",
        "/api/v1/webhooks/{webhook}/deliveries/{webhook_delivery}/resend/",
        API_WEBHOOK,
        api=True,
    ),
]


MATRIX: list[Row] = [
    # ---- portal pages ----------------------------------------------------------------------------
    Row("portal:now", "GET", "/", PAGE_ALL),
    Row("portal:incidents", "GET", "/incidents/", PAGE_ALL),
    # Page a team by hand: the team is a body id, so a team one cannot page is a field error (400).
    Row("portal:incident_new", "GET", "/incidents/new", PAGE_ALL),
    Row(
        "portal:incident_new",
        "POST",
        "/incidents/new",
        E("login", 400, 400, "ok", "ok", "ok"),
        {"team": "{team_slug}", "title": "Checkout down", "urgency": "high", "severity": "error"},
    ),
    Row("portal:incident", "GET", "/incidents/{incident}/", PAGE_TEAM),
    Row("portal:incident_live", "GET", "/incidents/{incident}/live?v=stale", PAGE_TEAM),
    Row("portal:incident_acknowledge", "POST", "/incidents/{incident}/acknowledge", PAGE_WORK),
    Row("portal:incident_resolve", "POST", "/incidents/{incident}/resolve", PAGE_WORK),
    Row("portal:incident_escalate", "POST", "/incidents/{incident}/escalate", PAGE_WORK),
    Row("portal:incident_reassign", "POST", "/incidents/{incident}/reassign", PAGE_WORK, {"users": "{engineer}"}),
    Row("portal:incident_note", "POST", "/incidents/{incident}/note", PAGE_WORK, {"text": "Looking"}),
    Row("portal:incident_snooze", "POST", "/incidents/{incident}/snooze", PAGE_WORK, {"minutes": "60"}),
    Row("portal:incident_policy", "POST", "/incidents/{incident}/policy", PAGE_WORK, {"policy": "{policy}"}),
    Row("portal:schedule", "GET", "/schedule/", PAGE_ALL),
    Row(
        "portal:exclusion_create",
        "POST",
        "/schedule/exclusions",
        E("login", "ok|400", "ok|400", "ok|400", "ok|400", "ok|400"),
        {"start": "2026-05-01T09:00", "end": "2026-05-02T09:00", "kind": "vacation"},
    ),
    Row(
        "portal:override_create",
        "POST",
        "/schedule/overrides",
        E("login", "ok|400", 403, "ok|400", "ok|400", "ok|400"),
        {"rotation": "{rotation}", "start": "2026-05-01T09:00", "end": "2026-05-01T12:00", "position": "primary"},
    ),
    # Own time off (a teammate sees it, may not change it); overrides one takes part in, or the team's manager.
    Row(
        "portal:exclusion_edit", "GET", "/schedule/exclusions/{exclusion}/edit", E("login", 404, 403, "ok", "ok", "ok")
    ),
    Row(
        "portal:exclusion_edit",
        "POST",
        "/schedule/exclusions/{exclusion}/edit",
        E("login", 404, 403, "ok|400", "ok|400", "ok|400"),
        {"kind": "sick", "start": "2026-05-01T09:00", "end": "2026-05-03T09:00"},
    ),
    Row(
        "portal:exclusion_cancel",
        "POST",
        "/schedule/exclusions/{exclusion}/cancel",
        E("login", 404, 403, "ok", "ok", "ok"),
    ),
    Row("portal:override_edit", "GET", "/schedule/overrides/{override}/edit", E("login", 404, 403, "ok", "ok", "ok")),
    Row(
        "portal:override_edit",
        "POST",
        "/schedule/overrides/{override}/edit",
        E("login", 404, 403, "ok|400", "ok|400", "ok|400"),
        {"start": "2026-05-01T09:00", "end": "2026-05-01T10:00"},
    ),
    Row(
        "portal:override_cancel",
        "POST",
        "/schedule/overrides/{override}/cancel",
        E("login", 404, 403, "ok", "ok", "ok"),
    ),
    # A swap request: any paging member may ask (the body is checked: another team's rotation or person, 400).
    Row(
        "portal:swap_create",
        "POST",
        "/schedule/swaps",
        E("login", 400, 400, "ok|400", "ok|400", 400),
        {"rotation": "{rotation}", "taker": "{engineer}", "start": "2026-05-01T09:00", "end": "2026-05-02T09:00"},
    ),
    Row("portal:profile", "GET", "/profile/", PAGE_ALL),
    Row(
        "portal:method_add",
        "POST",
        "/profile/methods",
        E("login", "ok|400", "ok|400", "ok|400", "ok|400", "ok|400"),
        {"kind": "sms", "value": "+15550100123"},
    ),
    # Slack not configured in the matrix: everyone signed in gets past the check (a redirect with a message).
    Row("portal:slack_connect", "POST", "/profile/methods/slack", PAGE_ALL),
    Row("portal:method_send", "POST", "/profile/methods/{method}/send", PAGE_OWN),
    Row(
        "portal:method_verify",
        "POST",
        "/profile/methods/{method}/verify",
        E("login", 404, 404, "ok|400", 404, 404),
        {"code": "000000"},
    ),
    Row("portal:method_delete", "POST", "/profile/methods/{method}/delete", PAGE_OWN),
    Row(
        "portal:rule_add",
        "POST",
        "/profile/rules",
        E("login", "ok|400", "ok|400", "ok|400", "ok|400", "ok|400"),
        {"contact_method": "{method}", "delay_minutes": "0"},
    ),
    Row("portal:rule_delete", "POST", "/profile/rules/{rule}/delete", PAGE_OWN),
    Row("portal:rule_move", "POST", "/profile/rules/{rule}/move", PAGE_OWN, {"direction": "up"}),
    Row(
        "portal:token_create",
        "POST",
        "/profile/tokens",
        E("login", "ok|400", "ok|400", "ok|400", "ok|400", "ok|400"),
        {"name": "script", "expires_in_days": "30"},
    ),
    # One's own shift notice settings: anyone signed in, for themselves only (no id in the URL or body).
    Row(
        "portal:notice_prefs",
        "POST",
        "/profile/notices",
        E("login", "ok|400", "ok|400", "ok|400", "ok|400", "ok|400"),
        {"reminder_leads": "1h", "reminder_kinds": "email", "handover_kinds": "email", "roster_change_kinds": "email"},
    ),
    Row("portal:token_revoke", "POST", "/profile/tokens/{token}/revoke", PAGE_OWN),
    Row("portal:teams", "GET", "/teams/", PAGE_ALL),
    Row("portal:team_options", "GET", "/teams/options?q=a", PAGE_ALL),
    Row("portal:team_create", "GET", "/teams/new", PAGE_STAFF),
    Row("portal:team_create", "POST", "/teams/new", E("login", 403, 403, 403, 403, "ok|400"), {}),
    Row("portal:team", "GET", "/teams/{team_slug}/", PAGE_TEAM),
    Row("portal:user_ical_rotate", "POST", "/schedule/ical/rotate", PAGE_ALL, {}),
    Row("portal:team_ical_rotate", "POST", "/teams/{team_slug}/ical/rotate", PAGE_MANAGE, {}),
    Row("portal:team_edit", "GET", "/teams/{team_slug}/edit", PAGE_MANAGE),
    Row("portal:team_edit", "POST", "/teams/{team_slug}/edit", PAGE_MANAGE_POST, {}),
    Row("portal:team_members", "GET", "/teams/{team_slug}/members/", PAGE_MANAGE),
    Row(
        "portal:team_member_add",
        "POST",
        "/teams/{team_slug}/members/add",
        PAGE_MANAGE_POST,
        {"user": "{outsider}", "role": "viewer"},
    ),
    Row(
        "portal:team_member_role",
        "POST",
        "/teams/{team_slug}/members/{viewer}/role",
        PAGE_MANAGE_POST,
        {"role": "engineer"},
    ),
    Row("portal:team_member_remove", "POST", "/teams/{team_slug}/members/{viewer}/remove", PAGE_MANAGE_POST, {}),
    Row("portal:calendar", "GET", "/teams/{team_slug}/calendar/", PAGE_TEAM),
    Row("portal:team_override_new", "GET", "/teams/{team_slug}/overrides/new", PAGE_TEAM),
    Row("portal:team_exclusion_new", "GET", "/teams/{team_slug}/exclusions/new", PAGE_TEAM),
    Row("portal:rotation_create", "GET", "/teams/{team_slug}/rotations/new", PAGE_MANAGE),
    Row("portal:rotation_create", "POST", "/teams/{team_slug}/rotations/new", PAGE_MANAGE_POST, {}),
    Row("portal:rotation_edit", "GET", "/rotations/{rotation}/edit", PAGE_MANAGE),
    Row("portal:rotation_edit", "POST", "/rotations/{rotation}/edit", PAGE_MANAGE_POST, {}),
    # The unsaved preview of a rotation definition (follow-the-sun restrictions): managers only.
    Row(
        "portal:rotation_create_preview",
        "POST",
        "/teams/{team_slug}/rotations/preview",
        E("login", 404, 403, 403, "ok", "ok"),
        {
            "name": "Preview",
            "time_zone": "UTC",
            "positions": "primary",
            "start_date": "2026-05-01",
            "handoff_time": "09:00",
            "shift_unit": "weeks",
            "shift_length": "1",
            "restrictions": "Mon-Fri 09:00-17:00",
        },
    ),
    Row("portal:rotation_create_preview", "POST", "/teams/{team_slug}/rotations/preview", PAGE_MANAGE_POST, {}),
    Row(
        "portal:rotation_edit_preview",
        "POST",
        "/rotations/{rotation}/preview",
        E("login", 404, 403, 403, "ok", "ok"),
        {
            "name": "Preview",
            "positions": "primary",
            "start_date": "2026-05-01",
            "handoff_time": "09:00",
            "shift_unit": "weeks",
            "shift_length": "1",
            "restrictions": "daily 22:00-06:00",
        },
    ),
    Row("portal:rotation_edit_preview", "POST", "/rotations/{rotation}/preview", PAGE_MANAGE_POST, {}),
    Row("portal:policy_create", "GET", "/teams/{team_slug}/policies/new", PAGE_MANAGE),
    Row("portal:policy_create", "POST", "/teams/{team_slug}/policies/new", PAGE_MANAGE_POST, {}),
    Row("portal:policy_edit", "GET", "/policies/{policy}/edit", PAGE_MANAGE),
    Row("portal:policy_edit", "POST", "/policies/{policy}/edit", PAGE_MANAGE_POST, {}),
    # Integrations, maintenance windows, heartbeats: the team reads the list; keys and every change are
    # for its managers and staff (valid bodies: each POST must succeed). Another team's manager and
    # engineer meet 404: the team is not theirs.
    Row("portal:integrations", "GET", "/teams/{team_slug}/integrations/", PAGE_TEAM),
    Row("portal:integration_create", "GET", "/teams/{team_slug}/integrations/new", PAGE_MANAGE),
    Row(
        "portal:integration_create",
        "POST",
        "/teams/{team_slug}/integrations/new",
        PAGE_MANAGE,
        {"name": "Grafana", "kind": "generic", "urgency_rule": "severity"},
    ),
    Row("portal:integration", "GET", "/teams/{team_slug}/integrations/{integration}/", PAGE_MANAGE),
    Row(
        "portal:integration_enabled",
        "POST",
        "/teams/{team_slug}/integrations/{integration}/enabled",
        PAGE_MANAGE,
        {"enabled": "0"},
    ),
    Row(
        "portal:integration_key_rotate",
        "POST",
        "/teams/{team_slug}/integrations/{integration}/rotate",
        PAGE_MANAGE,
        {"confirm": "on"},
    ),
    Row(
        "portal:integration_delete",
        "POST",
        "/teams/{team_slug}/integrations/{integration}/delete",
        PAGE_MANAGE,
        {"confirm": "on"},
    ),
    Row("portal:integration_probe", "POST", "/teams/{team_slug}/integrations/{integration}/test", PAGE_MANAGE),
    Row(
        "portal:integration_probe_status",
        "GET",
        "/teams/{team_slug}/integrations/{integration}/test/status?probe=" + "a" * 32,
        PAGE_MANAGE,
    ),
    Row("portal:window_create", "GET", "/teams/{team_slug}/maintenance/new", PAGE_MANAGE),
    Row(
        "portal:window_create",
        "POST",
        "/teams/{team_slug}/maintenance/new",
        PAGE_MANAGE,
        {"start": "2030-01-01T10:00", "end": "2030-01-01T12:00", "integration": "{integration}"},
    ),
    Row("portal:window_end", "POST", "/teams/{team_slug}/maintenance/{window}/end", PAGE_MANAGE),
    Row("portal:window_delete", "POST", "/teams/{team_slug}/maintenance/{window}/delete", PAGE_MANAGE),
    Row("portal:heartbeat_create", "GET", "/teams/{team_slug}/heartbeats/new", PAGE_MANAGE),
    Row(
        "portal:heartbeat_create",
        "POST",
        "/teams/{team_slug}/heartbeats/new",
        PAGE_MANAGE,
        {"name": "Backup", "interval_minutes": "60", "grace_minutes": "5"},
    ),
    Row(
        "portal:heartbeat_token_rotate",
        "POST",
        "/teams/{team_slug}/heartbeats/{heartbeat}/rotate",
        PAGE_MANAGE,
        {"confirm": "on"},
    ),
    Row(
        "portal:heartbeat_delete",
        "POST",
        "/teams/{team_slug}/heartbeats/{heartbeat}/delete",
        PAGE_MANAGE,
        {"confirm": "on"},
    ),
    Row("portal:insights", "GET", "/insights/", PAGE_ALL),
    Row("portal:insights_csv", "GET", "/insights.csv", PAGE_ALL),
    Row("portal:import", "GET", "/import/", PAGE_STAFF),
    Row("portal:import", "POST", "/import/", PAGE_STAFF_POST, {}),
    Row("portal:import_apply", "POST", "/import/apply", PAGE_STAFF_POST, {"ticket": "none"}),
    # With Twilio configured (as in tests) there is no outbox: 404 for everyone signed in.
    Row("portal:outbox", "GET", "/outbox/", E("login", 404, 404, 404, 404, 404)),
    Row(
        "portal:outbox_sms_reply",
        "POST",
        "/outbox/sms-reply",
        E("login", 404, 404, 404, 404, 404),
        {"from_number": "{method_value}", "body": "{incident}A"},
    ),
    Row("portal:outbox_voice_key", "POST", "/outbox/{outbox}/key", E("login", 404, 404, 404, 404, 404), {"digit": "1"}),
    Row(
        "rotations:handover-note",
        "GET",
        "/rosters/teams/{team_slug}/handover-note/",
        E("login", 403, 403, "ok", "ok", "ok"),
    ),
    Row(
        "rotations:handover-log",
        "GET",
        "/rosters/teams/{team_slug}/handovers/",
        E("login", 403, "ok", "ok", "ok", "ok"),
    ),
    Row("calls:log", "GET", "/calls/", PAGE_STAFF),
    Row("portal:system", "GET", "/system/", PAGE_STAFF),
    # The simulator is off outside DEBUG: staff get its 404, everyone else stops at the staff check.
    Row("calls:simulate", "GET", "/calls/simulate/", E("login", 403, 403, 403, 403, 404)),
    # Visible to the line's team; no recording stored, so the permitted answer is 404 "no recording".
    Row("calls:recording", "GET", "/calls/{call}/recording", E("login", 403, 404, 404, 404, 404)),
    # Setting up the emergency line: staff only (no team owns the directory or the block list).
    Row("calls:lines", "GET", "/calls/lines/", PAGE_STAFF),
    Row("calls:line_new", "GET", "/calls/lines/new/", PAGE_STAFF),
    Row("calls:line_new", "POST", "/calls/lines/new/", PAGE_STAFF_POST, {"number": "+15550100998", "name": "Line 2"}),
    Row("calls:line", "GET", "/calls/lines/{line}/", PAGE_STAFF),
    Row("calls:line", "POST", "/calls/lines/{line}/", PAGE_STAFF_POST, {"number": "not a number"}),
    Row(
        "calls:option_new",
        "POST",
        "/calls/lines/{line}/options/new/",
        PAGE_STAFF_POST,
        {"digit": 2, "label": "x", "team": "{team}"},
    ),
    Row("calls:option", "GET", "/calls/lines/{line}/options/{option}/", PAGE_STAFF),
    Row("calls:option", "POST", "/calls/lines/{line}/options/{option}/", PAGE_STAFF_POST, {"digit": 0}),
    Row("calls:option_delete", "POST", "/calls/lines/{line}/options/{option}/delete/", PAGE_STAFF, {}),
    Row("calls:blocked", "GET", "/calls/blocked/", PAGE_STAFF),
    Row("calls:blocked", "POST", "/calls/blocked/", PAGE_STAFF_POST, {"number": "+15550142999"}),
    Row("calls:blocked_remove", "POST", "/calls/blocked/{blocked}/delete/", PAGE_STAFF, {}),
    Row("calls:directory", "GET", "/calls/directory/", PAGE_STAFF),
    Row("calls:customer_new", "GET", "/calls/directory/new/", PAGE_STAFF),
    Row("calls:customer_new", "POST", "/calls/directory/new/", PAGE_STAFF_POST, {"organisation": "Acme"}),
    Row("calls:customer", "GET", "/calls/directory/{customer}/", PAGE_STAFF),
    Row("calls:customer", "POST", "/calls/directory/{customer}/", PAGE_STAFF_POST, {"organisation": ""}),
    Row("calls:customer_delete", "POST", "/calls/directory/{customer}/delete/", PAGE_STAFF, {}),
    Row("calls:directory_import", "GET", "/calls/directory/import/", PAGE_STAFF),
    Row(
        "calls:directory_import",
        "POST",
        "/calls/directory/import/",
        PAGE_STAFF_POST,
        {"content": "name,company,phone numbers\nDana,Acme,+15550142001\n"},
    ),
    Row("admin:index", "GET", "/admin/", ADMIN),
    # ---- API: rosters ------------------------------------------------------------------------------
    Row("api-root", "GET", "/api/v1/", API_READ_ALL, api=True),
    Row("team-list", "GET", "/api/v1/teams/", API_READ_ALL, api=True),
    Row("my-ical-token-rotate", "POST", "/api/v1/me/ical-token/rotate/", API_READ_ALL, {}, api=True),
    Row("team-ical-token-rotate", "POST", "/api/v1/teams/{team}/ical-token/rotate/", API_MANAGE, {}, api=True),
    Row("team-list", "POST", "/api/v1/teams/", API_STAFF_ONLY, {"name": "New team", "time_zone": "UTC"}, api=True),
    Row("team-detail", "GET", "/api/v1/teams/{team}/", API_READ_TEAM, api=True),
    Row("team-detail", "PATCH", "/api/v1/teams/{team}/", API_MANAGE, {"description": "x"}, api=True),
    Row(
        "team-detail",
        "PUT",
        "/api/v1/teams/{team}/",
        API_MANAGE,
        {"name": "Renamed", "slug": "{team_slug}", "time_zone": "UTC"},
        api=True,
    ),
    Row(
        "team-members",
        "POST",
        "/api/v1/teams/{team}/members/",
        API_MANAGE,
        {"user": "{outsider}", "role": "viewer"},
        api=True,
    ),
    Row("team-member-remove", "DELETE", "/api/v1/teams/{team}/members/{viewer}/", API_MANAGE, api=True),
    Row("team-handover-notes", "GET", "/api/v1/teams/{team}/handover-notes/", API_WORK, api=True),
    Row(
        "team-handover-notes", "POST", "/api/v1/teams/{team}/handover-notes/", API_WORK, {"text": "watch db1"}, api=True
    ),
    Row("rotation-list", "GET", "/api/v1/rotations/", API_READ_ALL, api=True),
    Row(
        "rotation-list",
        "POST",
        "/api/v1/rotations/",
        API_CREATE_MANAGED,
        {
            "team": "{team}",
            "name": "Night",
            "time_zone": "UTC",
            "start_date": "2026-03-02",
            "handoff_time": "09:00",
            "participants": ["{engineer}"],
        },
        api=True,
    ),
    Row("rotation-detail", "GET", "/api/v1/rotations/{rotation}/", API_READ_TEAM, api=True),
    Row("rotation-detail", "PATCH", "/api/v1/rotations/{rotation}/", API_MANAGE, {"name": "Renamed"}, api=True),
    Row("rotation-detail", "DELETE", "/api/v1/rotations/{rotation}/", API_MANAGE, api=True),
    Row(
        "rotation-definition",
        "POST",
        "/api/v1/rotations/{rotation}/definition/",
        API_MANAGE,
        {"effective_from": "{next_month}", "shift_length": 2},
        api=True,
    ),
    Row("exclusion-list", "GET", "/api/v1/exclusions/", API_READ_ALL, api=True),
    # Your own exclusion: anyone signed in.
    Row(
        "exclusion-list",
        "POST",
        "/api/v1/exclusions/",
        API_READ_ALL,
        {"start": "2026-05-01T09:00:00Z", "end": "2026-05-02T09:00:00Z"},
        api=True,
    ),
    Row("exclusion-detail", "GET", "/api/v1/exclusions/{exclusion}/", API_READ_TEAM, api=True),
    Row(
        "exclusion-detail",
        "PATCH",
        "/api/v1/exclusions/{exclusion}/",
        E(401, 404, 403, "ok", "ok", "ok"),
        {"reason": "moved"},
        api=True,
    ),
    Row(
        "exclusion-detail",
        "PUT",
        "/api/v1/exclusions/{exclusion}/",
        E(401, 404, 403, "ok", "ok", "ok"),
        {"start": "2026-05-01T09:00:00Z", "end": "2026-05-03T09:00:00Z"},
        api=True,
    ),
    Row("exclusion-detail", "DELETE", "/api/v1/exclusions/{exclusion}/", E(401, 404, 403, "ok", "ok", "ok"), api=True),
    Row("override-list", "GET", "/api/v1/overrides/", API_READ_ALL, api=True),
    # Taker defaults to the caller: engineers may take the pager themselves; viewers may not; staff
    # outside the team may not either (a taker pages for the team), nor anyone of another team.
    Row(
        "override-list",
        "POST",
        "/api/v1/overrides/",
        E(401, 400, 403, "ok", "ok", 400),
        {
            "rotation": "{rotation}",
            "start": "2026-05-01T09:00:00Z",
            "end": "2026-05-01T12:00:00Z",
            "position": "primary",
        },
        api=True,
    ),
    Row("override-detail", "GET", "/api/v1/overrides/{override}/", API_READ_TEAM, api=True),
    Row("override-detail", "PATCH", "/api/v1/overrides/{override}/", API_WORK, {"reason": "swap"}, api=True),
    Row(
        "override-detail",
        "PUT",
        "/api/v1/overrides/{override}/",
        API_WORK,
        {
            "rotation": "{rotation}",
            "user": "{engineer}",
            "start": "2026-05-01T09:00:00Z",
            "end": "2026-05-01T13:00:00Z",
            "position": "primary",
        },
        api=True,
    ),
    Row("override-detail", "DELETE", "/api/v1/overrides/{override}/", API_WORK, api=True),
    Row("oncall", "GET", "/api/v1/oncall/?team={team}", API_READ_TEAM, api=True),
    Row("shifts", "GET", "/api/v1/shifts/?team={team}", API_READ_TEAM, api=True),
    # ---- API: incidents ------------------------------------------------------------------------------
    Row("incident-list", "GET", "/api/v1/incidents/", API_READ_ALL, api=True),
    Row(
        "incident-list",
        "POST",
        "/api/v1/incidents/",
        E(401, 403, 403, "ok", "ok", "ok"),
        {"team": "{team}", "title": "Manual"},
        api=True,
    ),
    Row("incident-detail", "GET", "/api/v1/incidents/{incident}/", API_READ_TEAM, api=True),
    Row("incident-acknowledge", "POST", "/api/v1/incidents/{incident}/acknowledge/", API_WORK, api=True),
    Row("incident-resolve", "POST", "/api/v1/incidents/{incident}/resolve/", API_WORK, api=True),
    Row("incident-escalate", "POST", "/api/v1/incidents/{incident}/escalate/", API_WORK, api=True),
    Row("incident-note", "POST", "/api/v1/incidents/{incident}/note/", API_WORK, {"text": "Looking"}, api=True),
    Row("incident-snooze", "POST", "/api/v1/incidents/{incident}/snooze/", API_WORK, {"minutes": 30}, api=True),
    Row("incident-policy", "POST", "/api/v1/incidents/{incident}/policy/", API_WORK, {"policy": "{policy}"}, api=True),
    Row(
        "incident-reassign",
        "POST",
        "/api/v1/incidents/{incident}/reassign/",
        API_WORK,
        {"user_ids": ["{engineer}"]},
        api=True,
    ),
    # ---- API: team configuration -------------------------------------------------------------------
    Row("escalation-policy-list", "GET", "/api/v1/escalation-policies/", API_READ_ALL, api=True),
    Row(
        "escalation-policy-list",
        "POST",
        "/api/v1/escalation-policies/",
        API_CREATE_MANAGED,
        {"team": "{team}", "name": "Night", "steps": []},
        api=True,
    ),
    Row("escalation-policy-detail", "GET", "/api/v1/escalation-policies/{policy}/", API_READ_TEAM, api=True),
    Row(
        "escalation-policy-detail",
        "PATCH",
        "/api/v1/escalation-policies/{policy}/",
        API_MANAGE,
        {"name": "Renamed"},
        api=True,
    ),
    Row(
        "escalation-policy-detail",
        "PUT",
        "/api/v1/escalation-policies/{policy}/",
        API_MANAGE,
        {"team": "{team}", "name": "Renamed", "steps": []},
        api=True,
    ),
    Row("escalation-policy-detail", "DELETE", "/api/v1/escalation-policies/{policy}/", API_MANAGE, api=True),
    Row("integration-list", "GET", "/api/v1/integrations/", API_READ_ALL, api=True),
    Row(
        "integration-list",
        "POST",
        "/api/v1/integrations/",
        API_CREATE_MANAGED,
        {"team": "{team}", "name": "Prom", "kind": "alertmanager"},
        api=True,
    ),
    Row("integration-detail", "GET", "/api/v1/integrations/{integration}/", API_READ_TEAM, api=True),
    Row(
        "integration-detail", "PATCH", "/api/v1/integrations/{integration}/", API_MANAGE, {"name": "Renamed"}, api=True
    ),
    Row(
        "integration-detail",
        "PUT",
        "/api/v1/integrations/{integration}/",
        API_MANAGE,
        {"team": "{team}", "name": "Renamed", "kind": "pagerduty"},
        api=True,
    ),
    Row("integration-detail", "DELETE", "/api/v1/integrations/{integration}/", API_MANAGE, api=True),
    Row("integration-rotate-key", "POST", "/api/v1/integrations/{integration}/rotate-key/", API_MANAGE, api=True),
    Row("maintenance-window-list", "GET", "/api/v1/maintenance-windows/", API_READ_ALL, api=True),
    Row(
        "maintenance-window-list",
        "POST",
        "/api/v1/maintenance-windows/",
        API_CREATE_MANAGED,
        {"team": "{team}", "start": "2026-05-01T09:00:00Z", "end": "2026-05-01T10:00:00Z", "reason": "db"},
        api=True,
    ),
    Row("maintenance-window-detail", "GET", "/api/v1/maintenance-windows/{window}/", API_READ_TEAM, api=True),
    Row(
        "maintenance-window-detail",
        "PATCH",
        "/api/v1/maintenance-windows/{window}/",
        API_MANAGE,
        {"reason": "longer"},
        api=True,
    ),
    Row(
        "maintenance-window-detail",
        "PUT",
        "/api/v1/maintenance-windows/{window}/",
        API_MANAGE,
        {"team": "{team}", "start": "2026-05-01T09:00:00Z", "end": "2026-05-01T11:00:00Z", "reason": "db"},
        api=True,
    ),
    Row("maintenance-window-detail", "DELETE", "/api/v1/maintenance-windows/{window}/", API_MANAGE, api=True),
    Row("heartbeat-list", "GET", "/api/v1/heartbeats/", API_READ_ALL, api=True),
    Row(
        "heartbeat-list",
        "POST",
        "/api/v1/heartbeats/",
        API_CREATE_MANAGED,
        {"team": "{team}", "name": "Backup", "interval": "01:00:00"},
        api=True,
    ),
    Row("heartbeat-detail", "GET", "/api/v1/heartbeats/{heartbeat}/", API_READ_TEAM, api=True),
    Row("heartbeat-detail", "PATCH", "/api/v1/heartbeats/{heartbeat}/", API_MANAGE, {"name": "Renamed"}, api=True),
    Row(
        "heartbeat-detail",
        "PUT",
        "/api/v1/heartbeats/{heartbeat}/",
        API_MANAGE,
        {"team": "{team}", "name": "Renamed", "interval": "01:00:00"},
        api=True,
    ),
    Row("heartbeat-detail", "DELETE", "/api/v1/heartbeats/{heartbeat}/", API_MANAGE, api=True),
    Row("heartbeat-rotate-token", "POST", "/api/v1/heartbeats/{heartbeat}/rotate-token/", API_MANAGE, api=True),
    # ---- API: people and tokens ----------------------------------------------------------------------
    Row("user-list", "GET", "/api/v1/users/", API_READ_ALL, api=True),
    Row("user-detail", "GET", "/api/v1/users/{engineer}/", API_READ_TEAM, api=True),
    Row("api-token-list", "GET", "/api/v1/tokens/", API_READ_ALL, api=True),
    # The matrix's API clients present bearer tokens, and a token never mints another (only an interactive
    # session may: tests/portal/test_api_tokens.py).
    Row(
        "api-token-list",
        "POST",
        "/api/v1/tokens/",
        E(401, 403, 403, 403, 403, 403),
        {"name": "ci", "expires_at": "{in_a_week}"},
        api=True,
    ),
    Row("api-token-detail", "GET", "/api/v1/tokens/{token}/", API_OWN, api=True),
    Row("api-token-detail", "DELETE", "/api/v1/tokens/{token}/", API_OWN, api=True),
    *WEBHOOK_MATRIX,
]

# URL names deliberately outside the role matrix, each with the reason.
NOT_ROLE_CHECKED: dict[str, str] = {
    "healthz": "public liveness probe",
    "readyz": "public readiness probe",
    "metrics": "Prometheus: bearer token or an allowed address (tests/escalations/test_monitoring_metrics.py)",
    "api-schema": "public OpenAPI document (fuzzed by tests/proof/test_schemathesis.py)",
    "api-docs": "public Swagger UI",
    "api-redoc": "public Redoc",
    "api-root": "format-suffix variant of the API root (the plain root is in the matrix)",
    **{
        f"intake:{n}": "integration key / routing key is the credential (tests/proof/test_bad_input.py)"
        for n in ("pagerduty-enqueue", "pagerduty-change-enqueue", "alertmanager", "generic", "heartbeat")
    },
    **{
        f"intake:{n}": "the GenieKey (integration key) is the credential (tests/escalations/test_opsgenie_api.py)"
        for n in ("opsgenie-alerts", "opsgenie-alert-action", "opsgenie-request-status")
    },
    **{
        f"twilio:{n}": "X-Twilio-Signature is the credential (tests/proof/test_twilio_signatures.py)"
        for n in (
            "page-status",
            "sms-inbound",
            "voice-page",
            "voice-page-gather",
            "phone_line_incoming",
            "phone_line_menu",
            "phone_line_record",
            "phone_line_recorded",
            "phone_line_recording_status",
            "phone_line_transcription",
            "phone_line_status",
            "phone_line_dial_done",
            "phone_line_whisper",
            "phone_line_whisper_accept",
        )
    },
    "email:action": "the signed, expiring, single-use link is the credential; acts only as the paged person "
    "(tests/escalations/test_email_links.py)",
    "portal:swap_answer": "the signed, expiring link is the credential, used once (a request is answered once); "
    "answers only as the colleague asked (tests/portal/test_swap_consent.py)",
    "slack:interactivity": "X-Slack-Signature (signing secret, 5-minute timestamp) is the credential; acts only as "
    "the Slack user's Backstop person, with their rights (tests/escalations/test_slack.py)",
    "slack:command": "X-Slack-Signature is the credential; answers only what the asker's Backstop person may see "
    "(tests/escalations/test_slack.py)",
    "ical:user": "secret feed token in the URL (tests/rotations/test_ical.py)",
    "ical:team": "secret feed token in the URL (tests/rotations/test_ical.py)",
}
# Sign-in, sign-up, password, TOTP and SSO flows: allauth's own views, for anonymous or the signed-in user only
# (SSO's decisions: tests/portal/test_sso.py).
ALLAUTH_PREFIXES = ("account_", "mfa_", "socialaccount_", "openid_connect_")


def _url_names(patterns=None, namespace: str = "") -> set[str]:
    names = set()
    for p in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(p, URLResolver):
            ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
            names |= _url_names(p.url_patterns, ns)
        elif isinstance(p, URLPattern):
            if not p.name and namespace.startswith("admin:"):
                continue  # the admin's unnamed redirect for old object URLs
            if not p.name and str(p.pattern).startswith("social/"):
                continue  # allauth's unnamed redirects from its old social/ URLs to the named 3rdparty/ pages
            assert p.name, f"URL pattern {p.pattern} has no name: name it and decide its permissions here"
            names.add(namespace + p.name)
    return names


def _admin_changelists() -> list[str]:
    return [f"admin:{m._meta.app_label}_{m._meta.model_name}_changelist" for m in admin.site._registry]


def test_every_url_pattern_has_a_permission_decision():
    decided = {row.name for row in MATRIX + SWAP_MATRIX} | set(NOT_ROLE_CHECKED)
    undecided = sorted(
        name
        for name in _url_names()
        if name not in decided
        and not name.startswith(ALLAUTH_PREFIXES)
        # The admin is staff-only as a whole: its index is in the matrix, every model's changelist below.
        and not name.startswith("admin:")
    )
    assert undecided == [], f"URL patterns without a permission decision: {undecided}"
    stale = sorted(decided - _url_names())
    assert stale == [], f"matrix rows for URL names that no longer exist: {stale}"


# --------------------------------------------------------------------------------------------- world


@pytest.fixture
def world(team, role_users, mfa_user, policy, incident):
    users = role_users
    mfa_user(users["staff"])
    other = TeamFactory(name="Other team")
    for role in ("manager", "engineer"):
        users[f"other_{role}"] = MembershipFactory(team=other, role=role).user
    engineer, manager = users["engineer"], users["manager"]
    rotation = RotationFactory(team=team)
    RotationEraFactory(rotation=rotation, participants=[engineer, manager])
    method = ContactMethodFactory(user=engineer, value="+15550100777")
    rule = NotificationRuleFactory(contact_method=method)
    token = ApiToken.objects.create(
        user=engineer,
        name="laptop",
        prefix="bst_xxxxxxxx",
        key_hash="0" * 64,
        expires_at=timezone.now() + timedelta(days=30),
    )
    line = PhoneLine.objects.create(number="+15550100999", name="Emergency line", team=team)
    option = PhoneMenuOption.objects.create(line=line, digit=1, label="payments", team=team)
    blocked = BlockedNumber.objects.create(number="+15550142998")
    customer = CustomerContact.objects.create(organisation="Acme Retail", name="Dana")
    call = CallRecord.objects.create(
        call_sid="CA" + "1" * 32, line=line, from_number="+15550142001", to_number=line.number, started_at=T0
    )
    page = incident.pages.get(user=engineer)
    outbox = OutboxMessage.objects.create(
        channel="voice",
        to=method.value,
        body="Voice page for the engineer",
        incident=incident,
        page=page,
        recipient=engineer,
    )
    ids = SimpleNamespace(
        team=team.pk,
        team_slug=team.slug,
        rotation=rotation.pk,
        policy=policy.pk,
        incident=incident.pk,
        integration=IntegrationFactory(team=team).pk,
        **_webhook_ids(team, incident),
        heartbeat=HeartbeatFactory(team=team).pk,
        window=MaintenanceWindowFactory(team=team).pk,
        exclusion=ExclusionFactory(user=engineer).pk,
        override=OverrideFactory(rotation=rotation, user=engineer).pk,
        method=method.pk,
        method_value=method.value,
        rule=rule.pk,
        token=token.pk,
        call=call.pk,
        line=line.pk,
        option=option.pk,
        blocked=blocked.pk,
        customer=customer.pk,
        outbox=outbox.pk,
        engineer=engineer.pk,
        viewer=users["viewer"].pk,
        outsider=users["outsider"].pk,
        in_a_week=(timezone.now() + timedelta(days=7)).isoformat(),
        next_month=(timezone.now() + timedelta(days=30)).isoformat(),
    )
    return users, ids


def _webhook_ids(team, incident) -> dict:
    sub = WebhookSubscription.objects.create(
        team=team, url="https://93.184.216.34/hook", events=["incident.triggered"], secret=signing.secret_new()
    )
    event = WebhookEvent.objects.create(
        public_id="evt_matrix",
        team=team,
        type="incident.triggered",
        incident=incident,
        occurred_at=T0,
        payload={},
        created_at=T0,
    )
    delivery = WebhookDelivery.objects.create(
        subscription=sub, event=event, status="failed", retry_until=T0, created_at=T0
    )
    return {"webhook": sub.pk, "webhook_delivery": delivery.pk}


def _fill(value, ids):
    if isinstance(value, str):
        filled = value.format(**vars(ids))
        return int(filled) if filled.isdigit() and value.startswith("{") and value.endswith("}") else filled
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def _outcome(response) -> str:
    status = response.status_code
    if status in (301, 302, 303):
        location = response["Location"]
        if location.startswith("/accounts/login/"):
            return "login"
        if location.startswith("/admin/login/"):
            return "admin-login"
        return "ok"
    if 200 <= status < 300:
        return "ok"
    return str(status)


def _matches(outcome: str, expected) -> bool:
    if expected == "ok|400":
        return outcome in ("ok", "400")
    return outcome == str(expected)


def _request(row: Row, user, ids):
    path = _fill(row.path, ids)
    data = _fill(row.data, ids) if row.data is not None else None
    if row.api:
        client = api_client(user)
        call = getattr(client, row.method.lower())
        return call(path, data, format="json") if data is not None else call(path)
    client = Client()
    if user is not None:
        client.force_login(user)
    call = getattr(client, row.method.lower())
    return call(path, data) if data is not None else call(path)


def _check_row(row: Row, world) -> list[str]:
    users, ids = world
    wrong = []
    for role in ROLES:
        with transaction.atomic():
            response = _request(row, users.get(role), ids)
            transaction.set_rollback(True)
        outcome = _outcome(response)
        if not _matches(outcome, row.expect[role]):
            wrong.append(f"{role}: expected {row.expect[role]}, got {outcome} ({response.content[:120]!r})")
    return wrong


@pytest.mark.parametrize("row", MATRIX, ids=[r.id for r in MATRIX])
def test_permission_matrix(world, row):
    wrong = _check_row(row, world)
    assert not wrong, f"{row.method} {row.path}:\n  " + "\n  ".join(wrong)


@pytest.mark.parametrize("name", _admin_changelists())
def test_admin_is_staff_only(world, name):
    from django.urls import reverse

    row = Row(name, "GET", reverse(name), ADMIN_MODEL)
    wrong = _check_row(row, world)
    assert not wrong, f"{name}:\n  " + "\n  ".join(wrong)


# ------------------------------------------------------------------------- outbox mode (no Twilio)
# Every other role has added the engineer's verified number as an unverified method of their own:
# the number proves nothing, so only the engineer reads and answers the engineer's messages.

OUTBOX_MATRIX: list[Row] = [
    Row("portal:outbox", "GET", "/outbox/", PAGE_ALL),
    Row(
        "portal:outbox_sms_reply",
        "POST",
        "/outbox/sms-reply",
        E("login", 403, 403, "ok", 403, 403),
        {"from_number": "{method_value}", "body": "{incident}A"},
    ),
    Row("portal:outbox_voice_key", "POST", "/outbox/{outbox}/key", E("login", 404, 404, "ok", 404, 404), {"key": "1"}),
]


@pytest.fixture
def outbox_world(world, settings):
    settings.TWILIO_ACCOUNT_SID = ""
    users, ids = world
    for role, user in users.items():
        if role != "engineer":
            ContactMethod.objects.create(user=user, kind="sms", value=ids.method_value)
    return world


@pytest.mark.parametrize("row", OUTBOX_MATRIX, ids=[r.id for r in OUTBOX_MATRIX])
def test_permission_matrix_outbox_mode(outbox_world, row):
    wrong = _check_row(row, outbox_world)
    assert not wrong, f"{row.method} {row.path} (outbox mode):\n  " + "\n  ".join(wrong)


def test_outbox_mode_shows_each_role_only_their_own(outbox_world):
    users, _ = outbox_world
    seen = {}
    for role, user in users.items():
        client = Client()
        client.force_login(user)
        seen[role] = "Voice page for the engineer" in client.get("/outbox/").content.decode()
    assert seen == {role: role == "engineer" for role in users}


# ------------------------------------------------------------------- ids in bodies, across teams
# Each request below is allowed at the URL level (the caller's role on the team permits the write) and
# names a person or policy that does not belong to the team it is used in: refused, nothing written.


def _api(user):
    return api_client(user)


def _refused(response, field: str) -> None:
    assert response.status_code == 400, response.content
    assert field in {e["field"] for e in response.json()["errors"]}, response.json()


def _other_policy(users) -> int:
    return EscalationPolicyFactory(team=users["other_engineer"].memberships.get().team).pk


@pytest.mark.parametrize("taker", ["viewer", "outsider", "other_engineer"])
def test_engineer_cannot_hand_their_pager_to_a_non_paging_person(world, taker):
    users, ids = world
    before = Override.objects.count()
    response = _api(users["engineer"]).post(
        "/api/v1/overrides/",
        {
            "rotation": ids.rotation,
            "user": users[taker].pk,
            "replaces_user": ids.engineer,
            "start": "2026-05-01T09:00:00Z",
            "end": "2026-05-01T12:00:00Z",
        },
        format="json",
    )
    _refused(response, "user")
    assert Override.objects.count() == before


def test_manager_cannot_move_an_override_to_another_teams_engineer(world):
    users, ids = world
    response = _api(users["manager"]).patch(
        f"/api/v1/overrides/{ids.override}/", {"user": users["other_engineer"].pk}, format="json"
    )
    _refused(response, "user")
    assert Override.objects.get(pk=ids.override).user_id == ids.engineer


@pytest.mark.parametrize("person", ["viewer", "outsider", "other_engineer"])
def test_manager_cannot_put_a_non_paging_person_into_a_rotation(world, person):
    users, ids = world
    before = Rotation.objects.count()
    response = _api(users["manager"]).post(
        "/api/v1/rotations/",
        {
            "team": ids.team,
            "name": "Night",
            "time_zone": "UTC",
            "start_date": "2026-03-02",
            "handoff_time": "09:00",
            "participants": [ids.engineer, users[person].pk],
        },
        format="json",
    )
    _refused(response, "participants")
    assert Rotation.objects.count() == before
    response = _api(users["manager"]).post(
        f"/api/v1/rotations/{ids.rotation}/definition/",
        {"effective_from": ids.next_month, "participants": [users[person].pk]},
        format="json",
    )
    _refused(response, "participants")
    assert RotationEra.objects.filter(rotation_id=ids.rotation).count() == 1


def test_manager_cannot_point_their_team_at_another_teams_policy(world, team):
    users, ids = world
    response = _api(users["manager"]).patch(
        f"/api/v1/teams/{ids.team}/", {"escalation_policy": _other_policy(users)}, format="json"
    )
    _refused(response, "escalation_policy")
    team.refresh_from_db()
    assert team.escalation_policy_id == ids.policy


def test_staff_cannot_create_a_team_with_another_teams_policy(world):
    users, _ = world
    response = _api(users["staff"]).post(
        "/api/v1/teams/",
        {"name": "New team", "time_zone": "UTC", "escalation_policy": _other_policy(users)},
        format="json",
    )
    _refused(response, "escalation_policy")


def test_adding_another_teams_engineer_gives_no_say_over_their_exclusions(world):
    users, ids = world
    manager, theirs = users["manager"], users["other_engineer"]
    client = _api(manager)
    assert (
        client.post(
            f"/api/v1/teams/{ids.team}/members/", {"user": theirs.pk, "role": "engineer"}, format="json"
        ).status_code
        == 200
    )
    existing = ExclusionFactory(user=theirs)
    response = client.post(
        "/api/v1/exclusions/",
        {"user": theirs.pk, "start": "2026-05-01T09:00:00Z", "end": "2026-05-02T09:00:00Z"},
        format="json",
    )
    assert response.status_code == 403
    assert client.delete(f"/api/v1/exclusions/{existing.pk}/").status_code == 403
    assert client.patch(f"/api/v1/exclusions/{existing.pk}/", {"reason": "x"}, format="json").status_code == 403
    assert list(Exclusion.objects.filter(user=theirs)) == [existing]
    # The other team's manager, who does not manage this team now, has no say either; staff do.
    other = users["other_manager"]
    assert _api(other).delete(f"/api/v1/exclusions/{existing.pk}/").status_code == 403
    assert _api(users["staff"]).delete(f"/api/v1/exclusions/{existing.pk}/").status_code == 204


# ------------------------------------------------------------------- swap requests
# The engineer asked the manager to take their shifts: only the manager answers, only the engineer
# withdraws, and nobody else learns the request exists (404).

SWAP_MATRIX: list[Row] = [
    Row("portal:swap_accept", "POST", "/schedule/swaps/{swap}/accept", E("login", 404, 404, 403, "ok", 404)),
    Row("portal:swap_decline", "POST", "/schedule/swaps/{swap}/decline", E("login", 404, 404, 403, "ok", 404)),
    Row("portal:swap_cancel", "POST", "/schedule/swaps/{swap}/cancel", E("login", 404, 404, "ok", 403, 404)),
    # The API: everyone lists their own requests (none for the others); the same answers as the portal.
    Row("swap-list", "GET", "/api/v1/swaps/", E(401, "ok", "ok", "ok", "ok", "ok"), api=True),
    # Asking the manager: only a paging member of the rotation's team may ask (another team's rotation,
    # a viewer, staff outside the team: 400), and not themselves (the manager: 400).
    Row(
        "swap-list",
        "POST",
        "/api/v1/swaps/",
        E(401, 400, 400, "ok", 400, 400),
        {"rotation": "{rotation}", "taker": "{manager}", "start": "{in_a_week}", "end": "{in_eight_days}"},
        api=True,
    ),
    Row("swap-detail", "GET", "/api/v1/swaps/{swap}/", E(401, 404, 404, "ok", "ok", 404), api=True),
    Row("swap-accept", "POST", "/api/v1/swaps/{swap}/accept/", E(401, 404, 404, 403, "ok", 404), api=True),
    Row("swap-decline", "POST", "/api/v1/swaps/{swap}/decline/", E(401, 404, 404, 403, "ok", 404), api=True),
    Row("swap-withdraw", "POST", "/api/v1/swaps/{swap}/withdraw/", E(401, 404, 404, "ok", 403, 404), api=True),
    # Giving a shift away needs the taker's consent: an engineer naming the manager as taker gets a 400
    # pointing to swap requests (before: created the override); managers and staff assign directly.
    Row(
        "override-list",
        "POST",
        "/api/v1/overrides/",
        E(401, 400, 403, 400, "ok", "ok"),
        {
            "rotation": "{rotation}",
            "user": "{manager}",
            "replaces_user": "{engineer}",
            "start": "{in_a_week}",
            "end": "{in_eight_days}",
        },
        api=True,
    ),
    # The portal form: the same request becomes a swap request the manager answers (a redirect, "ok").
    Row(
        "portal:override_create",
        "POST",
        "/schedule/overrides",
        E("login", 400, 403, "ok", "ok", "ok|400"),
        {
            "rotation": "{rotation}",
            "taker": "{manager}",
            "replaces_user": "{engineer}",
            "start": "{in_a_week_local}",
            "end": "{in_eight_days_local}",
        },
    ),
]


@pytest.fixture
def swap_world(world):
    from rotations.models import SwapRequest

    users, ids = world
    start = timezone.now() + timedelta(days=3)
    ids.swap = SwapRequest.objects.create(
        rotation_id=ids.rotation,
        requester=users["engineer"],
        taker=users["manager"],
        start=start,
        end=start + timedelta(days=1),
        created_at=timezone.now(),
    ).pk
    ids.manager = users["manager"].pk
    week = (timezone.now() + timedelta(days=7)).replace(second=0, microsecond=0)
    ids.in_eight_days = (week + timedelta(days=1)).isoformat()
    ids.in_a_week_local = timezone.localtime(week).strftime("%Y-%m-%dT%H:%M")
    ids.in_eight_days_local = timezone.localtime(week + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    return world


@pytest.mark.parametrize("row", SWAP_MATRIX, ids=[r.id for r in SWAP_MATRIX])
def test_permission_matrix_swaps(swap_world, row):
    wrong = _check_row(row, swap_world)
    assert not wrong, f"{row.method} {row.path}:\n  " + "\n  ".join(wrong)
