"""/api/v1/ routes of the portal app."""

from rest_framework.routers import SimpleRouter

from portal import api

router = SimpleRouter()
router.register("tokens", api.ApiTokenViewSet, basename="api-token")

urlpatterns = router.urls
