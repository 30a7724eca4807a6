from django.conf import settings

from portal.sso.config import sso_config


def _twilio_configured() -> bool:
    return bool(settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN)


# (url name, label, section names that light it up)
NAV = [
    ("portal:now", "Now", {"now"}),
    ("portal:incidents", "Incidents", {"incidents", "incident", "incident_new"}),
    ("portal:schedule", "My schedule", {"schedule"}),
    ("portal:teams", "Teams", {"teams", "team", "calendar", "team_form", "rotation_form", "policy_form"}),
    ("portal:insights", "Insights", {"insights"}),
]


def backstop(request) -> dict:
    match = getattr(request, "resolver_match", None)
    current = match.url_name if match is not None else ""
    nav = [(name, label, current in names) for name, label, names in NAV]
    twilio = _twilio_configured()
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_staff:
        # The emergency line (calls, lines, block list, customer directory) is staff-only (portal.permissions).
        nav.append(("calls:log", "Calls", match is not None and match.namespace == "calls"))
        # Backstop's own health (escalations.monitoring): staff only, like the admin.
        nav.append(("portal:system", "System", current == "system"))
        # Moving from PagerDuty, Grafana OnCall or Opsgenie (portal.importers): staff only.
        nav.append(("portal:import", "Import", current in ("import", "import_apply")))
    if not twilio:
        nav.append(("portal:outbox", "Outbox", current == "outbox"))
    return {
        "twilio_configured": twilio,
        "debug": settings.DEBUG,
        "nav_items": nav,
        "nav_current": current,
        # The sign-in page's identity-provider button (portal/sso/); `enabled` is False without BACKSTOP_OIDC_ISSUER.
        "sso": sso_config(),
    }
