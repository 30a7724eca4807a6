"""/api/v1/: each app registers its viewsets on the shared router."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

router = DefaultRouter()

urlpatterns = [
    path("", include("rotations.api_urls")),
    path("", include("escalations.api.urls")),
    path("", include("portal.api_urls")),
    path("", include(router.urls)),
]
