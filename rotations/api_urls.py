from django.urls import include, path
from rest_framework.routers import SimpleRouter

from rotations import api

router = SimpleRouter()
router.register("teams", api.TeamViewSet, basename="team")
router.register("rotations", api.RotationViewSet, basename="rotation")
router.register("exclusions", api.ExclusionViewSet, basename="exclusion")
router.register("overrides", api.OverrideViewSet, basename="override")
router.register("swaps", api.SwapRequestViewSet, basename="swap")

urlpatterns = [
    path("oncall/", api.OncallView.as_view(), name="oncall"),
    path("shifts/", api.ShiftsView.as_view(), name="shifts"),
    path("me/ical-token/rotate/", api.MyIcalTokenRotateView.as_view(), name="my-ical-token-rotate"),
    path("", include(router.urls)),
]
