"""/integrations/: where monitoring tools send events (no session, no CSRF; the key is the secret)."""

from django.urls import path, re_path

from escalations.intake import views as intake_views

app_name = "intake"

urlpatterns = [
    path("pagerduty/v2/enqueue", intake_views.pagerduty_enqueue, name="pagerduty-enqueue"),
    path("pagerduty/v2/change/enqueue", intake_views.pagerduty_change_enqueue, name="pagerduty-change-enqueue"),
    path("alertmanager/<str:key>/", intake_views.alertmanager_webhook, name="alertmanager"),
    path("generic/<str:key>/", intake_views.generic_webhook, name="generic"),
    path("heartbeat/<str:token>/", intake_views.heartbeat_webhook, name="heartbeat"),
    path("opsgenie/v2/alerts", intake_views.opsgenie_alerts, name="opsgenie-alerts"),
    path(
        "opsgenie/v2/alerts/requests/<str:request_id>",
        intake_views.opsgenie_request_status,
        name="opsgenie-request-status",
    ),
    # An alias may hold any character, "/" included (the sender URL-encodes it).
    re_path(
        r"^opsgenie/v2/alerts/(?P<identifier>.+)/(?P<verb>close|acknowledge|notes)$",
        intake_views.opsgenie_alert_action,
        name="opsgenie-alert-action",
    ),
]
