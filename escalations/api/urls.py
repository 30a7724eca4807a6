"""/api/v1/ routes of the escalations app."""

from rest_framework.routers import SimpleRouter

from escalations.api import incidents as api_incidents
from escalations.api import intake as api_intake
from escalations.api import policies
from escalations.api import users as api_users
from escalations.api import webhooks as api_webhooks

router = SimpleRouter()
router.register("incidents", api_incidents.IncidentViewSet, basename="incident")
router.register("escalation-policies", policies.EscalationPolicyViewSet, basename="escalation-policy")
router.register("integrations", api_intake.IntegrationViewSet, basename="integration")
router.register("maintenance-windows", api_intake.MaintenanceWindowViewSet, basename="maintenance-window")
router.register("heartbeats", api_intake.HeartbeatViewSet, basename="heartbeat")
router.register("users", api_users.UserViewSet, basename="user")
router.register("webhooks", api_webhooks.WebhookSubscriptionViewSet, basename="webhook")

urlpatterns = router.urls
