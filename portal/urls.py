from django.urls import path

from portal.views import importer as views_importer
from portal.views import incident_new as views_incident_new
from portal.views import incidents as views_incidents
from portal.views import insights as views_insights
from portal.views import integrations as views_integrations
from portal.views import manage as views_manage
from portal.views import members as views_members
from portal.views import my_roster as views_my_roster
from portal.views import now as views_now
from portal.views import outbox
from portal.views import profile as views_profile
from portal.views import swaps as views_swaps
from portal.views import system as views_system
from portal.views import teams as views_teams
from portal.views import webhooks as views_webhooks

app_name = "portal"

urlpatterns = [
    path("", views_now.now, name="now"),
    # incidents
    path("incidents/", views_incidents.incidents, name="incidents"),
    path("incidents/new", views_incident_new.incident_new, name="incident_new"),
    path("incidents/<int:pk>/", views_incidents.incident_detail, name="incident"),
    path("incidents/<int:pk>/live", views_incidents.incident_live, name="incident_live"),
    path("incidents/<int:pk>/acknowledge", views_incidents.incident_acknowledge, name="incident_acknowledge"),
    path("incidents/<int:pk>/resolve", views_incidents.incident_resolve, name="incident_resolve"),
    path("incidents/<int:pk>/escalate", views_incidents.incident_escalate, name="incident_escalate"),
    path("incidents/<int:pk>/reassign", views_incidents.incident_reassign, name="incident_reassign"),
    path("incidents/<int:pk>/note", views_incidents.incident_note, name="incident_note"),
    path("incidents/<int:pk>/policy", views_incidents.incident_policy, name="incident_policy"),
    path("incidents/<int:pk>/snooze", views_incidents.incident_snooze, name="incident_snooze"),
    # my schedule
    path("schedule/", views_teams.schedule, name="schedule"),
    path("schedule/exclusions", views_teams.exclusion_create, name="exclusion_create"),
    path("schedule/overrides", views_teams.override_create, name="override_create"),
    path("schedule/exclusions/<int:pk>/edit", views_my_roster.exclusion_edit, name="exclusion_edit"),
    path("schedule/exclusions/<int:pk>/cancel", views_my_roster.exclusion_cancel, name="exclusion_cancel"),
    path("schedule/overrides/<int:pk>/edit", views_my_roster.override_edit, name="override_edit"),
    path("schedule/overrides/<int:pk>/cancel", views_my_roster.override_cancel, name="override_cancel"),
    path("schedule/swaps", views_swaps.swap_create, name="swap_create"),
    path("schedule/swaps/<int:pk>/accept", views_swaps.swap_accept, name="swap_accept"),
    path("schedule/swaps/<int:pk>/decline", views_swaps.swap_decline, name="swap_decline"),
    path("schedule/swaps/<int:pk>/cancel", views_swaps.swap_cancel, name="swap_cancel"),
    path("schedule/swaps/answer/<str:token>", views_swaps.swap_answer, name="swap_answer"),
    path("schedule/ical/rotate", views_teams.user_ical_rotate, name="user_ical_rotate"),
    # profile
    path("profile/", views_profile.profile, name="profile"),
    path("profile/methods", views_profile.method_add, name="method_add"),
    path("profile/methods/slack", views_profile.slack_connect, name="slack_connect"),
    path("profile/methods/<int:pk>/send", views_profile.method_send, name="method_send"),
    path("profile/methods/<int:pk>/verify", views_profile.method_verify, name="method_verify"),
    path("profile/methods/<int:pk>/delete", views_profile.method_delete, name="method_delete"),
    path("profile/rules", views_profile.rule_add, name="rule_add"),
    path("profile/rules/<int:pk>/delete", views_profile.rule_delete, name="rule_delete"),
    path("profile/rules/<int:pk>/move", views_profile.rule_move, name="rule_move"),
    path("profile/notices", views_profile.notice_prefs, name="notice_prefs"),
    path("profile/tokens", views_profile.token_create, name="token_create"),
    path("profile/tokens/<int:pk>/revoke", views_profile.token_revoke, name="token_revoke"),
    # teams, rosters, policies
    path("teams/", views_teams.teams, name="teams"),
    path("teams/new", views_manage.team_create, name="team_create"),
    path("teams/options", views_teams.team_options, name="team_options"),
    path("teams/<slug:slug>/", views_teams.team_detail, name="team"),
    path("teams/<slug:slug>/edit", views_manage.team_edit, name="team_edit"),
    path("teams/<slug:slug>/members/", views_members.team_members, name="team_members"),
    path("teams/<slug:slug>/members/add", views_members.team_member_add, name="team_member_add"),
    path("teams/<slug:slug>/members/<int:user_id>/role", views_members.team_member_role, name="team_member_role"),
    path("teams/<slug:slug>/members/<int:user_id>/remove", views_members.team_member_remove, name="team_member_remove"),
    path("teams/<slug:slug>/ical/rotate", views_teams.team_ical_rotate, name="team_ical_rotate"),
    path("teams/<slug:slug>/calendar/", views_manage.team_calendar, name="calendar"),
    path("teams/<slug:slug>/overrides/new", views_manage.team_override_new, name="team_override_new"),
    path("teams/<slug:slug>/exclusions/new", views_manage.team_exclusion_new, name="team_exclusion_new"),
    path("teams/<slug:slug>/rotations/new", views_manage.rotation_create, name="rotation_create"),
    path("teams/<slug:slug>/rotations/preview", views_manage.rotation_create_preview, name="rotation_create_preview"),
    path("rotations/<int:pk>/edit", views_manage.rotation_edit, name="rotation_edit"),
    path("rotations/<int:pk>/preview", views_manage.rotation_edit_preview, name="rotation_edit_preview"),
    path("teams/<slug:slug>/policies/new", views_manage.policy_create, name="policy_create"),
    path("policies/<int:pk>/edit", views_manage.policy_edit, name="policy_edit"),
    # integrations, maintenance windows, heartbeats
    path("teams/<slug:slug>/integrations/", views_integrations.integrations, name="integrations"),
    path("teams/<slug:slug>/integrations/new", views_integrations.integration_create, name="integration_create"),
    path("teams/<slug:slug>/integrations/<int:pk>/", views_integrations.integration_detail, name="integration"),
    path(
        "teams/<slug:slug>/integrations/<int:pk>/enabled",
        views_integrations.integration_enabled,
        name="integration_enabled",
    ),
    path(
        "teams/<slug:slug>/integrations/<int:pk>/rotate",
        views_integrations.integration_key_rotate,
        name="integration_key_rotate",
    ),
    path(
        "teams/<slug:slug>/integrations/<int:pk>/delete",
        views_integrations.integration_delete,
        name="integration_delete",
    ),
    path(
        "teams/<slug:slug>/integrations/<int:pk>/test", views_integrations.integration_probe, name="integration_probe"
    ),
    path(
        "teams/<slug:slug>/integrations/<int:pk>/test/status",
        views_integrations.integration_probe_status,
        name="integration_probe_status",
    ),
    path("teams/<slug:slug>/maintenance/new", views_integrations.window_create, name="window_create"),
    path("teams/<slug:slug>/maintenance/<int:pk>/end", views_integrations.window_end, name="window_end"),
    path("teams/<slug:slug>/maintenance/<int:pk>/delete", views_integrations.window_delete, name="window_delete"),
    path("teams/<slug:slug>/heartbeats/new", views_integrations.heartbeat_create, name="heartbeat_create"),
    path(
        "teams/<slug:slug>/heartbeats/<int:pk>/rotate",
        views_integrations.heartbeat_token_rotate,
        name="heartbeat_token_rotate",
    ),
    path("teams/<slug:slug>/heartbeats/<int:pk>/delete", views_integrations.heartbeat_delete, name="heartbeat_delete"),
    # insights, outbox
    path("insights/", views_insights.insights, name="insights"),
    path("insights.csv", views_insights.insights_csv, name="insights_csv"),
    path("outbox/", outbox.outbox, name="outbox"),
    path("outbox/sms-reply", outbox.outbox_sms_reply, name="outbox_sms_reply"),
    path("outbox/<int:pk>/key", outbox.outbox_voice_key, name="outbox_voice_key"),
    # on-call import (staff)
    path("import/", views_importer.import_page, name="import"),
    path("import/apply", views_importer.import_apply, name="import_apply"),
    # outgoing webhooks (managers and staff)
    path("teams/<slug:slug>/webhooks/", views_webhooks.webhooks, name="webhooks"),
    path("teams/<slug:slug>/webhooks/new", views_webhooks.webhook_create, name="webhook_create"),
    path("teams/<slug:slug>/webhooks/<int:pk>/", views_webhooks.webhook_detail, name="webhook"),
    path("teams/<slug:slug>/webhooks/<int:pk>/edit", views_webhooks.webhook_edit, name="webhook_edit"),
    path("teams/<slug:slug>/webhooks/<int:pk>/ping", views_webhooks.webhook_ping, name="webhook_ping"),
    path("teams/<slug:slug>/webhooks/<int:pk>/enabled", views_webhooks.webhook_enabled, name="webhook_enabled"),
    path("teams/<slug:slug>/webhooks/<int:pk>/rotate", views_webhooks.webhook_secret_rotate, name="webhook_rotate"),
    path("teams/<slug:slug>/webhooks/<int:pk>/delete", views_webhooks.webhook_delete, name="webhook_delete"),
    path(
        "teams/<slug:slug>/webhooks/<int:pk>/deliveries/<int:delivery_pk>/resend",
        views_webhooks.webhook_resend,
        name="webhook_resend",
    ),
    path("system/", views_system.system, name="system"),
]
