"""/api/v1/ routes of the escalations app."""

from rest_framework.routers import SimpleRouter

from escalations import api

router = SimpleRouter()
router.register("incidents", api.IncidentViewSet, basename="incident")
router.register("escalation-policies", api.EscalationPolicyViewSet, basename="escalation-policy")
router.register("integrations", api.IntegrationViewSet, basename="integration")
router.register("maintenance-windows", api.MaintenanceWindowViewSet, basename="maintenance-window")
router.register("heartbeats", api.HeartbeatViewSet, basename="heartbeat")
router.register("users", api.UserViewSet, basename="user")

urlpatterns = router.urls
