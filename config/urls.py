from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from config import health
from config.api_docs import ApiDocsView, ApiRedocView
from escalations.delivery import urls as delivery_urls
from escalations.phone import urls as phone_urls

# The admin signs people in through allauth (its rate limits, its TOTP step), never with its own form,
# which checks a password only.
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("", include("escalations.monitoring.urls")),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", ApiDocsView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", ApiRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("api/v1/", include("config.api_urls")),
    path("integrations/", include("escalations.intake.urls")),
    path("twilio/", include((delivery_urls.urlpatterns + phone_urls.twilio_urlpatterns, "twilio"))),
    path("calls/", include("escalations.phone.urls")),
    path("email/", include("escalations.delivery.email_urls")),
    path("ical/", include("rotations.ical_urls")),
    path("slack/", include("escalations.slack.urls")),
    path("rosters/", include("rotations.urls")),
    path("", include("portal.urls")),
]

# JSON errors for /api/ URLs that never reach DRF (unmatched paths, middleware failures); HTML elsewhere.
handler400 = "portal.api_errors.bad_request"
handler403 = "portal.api_errors.permission_denied"
handler404 = "portal.api_errors.page_not_found"
handler500 = "portal.api_errors.server_error"
