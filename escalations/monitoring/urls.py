from django.urls import path

from escalations.monitoring import views

urlpatterns = [path("metrics", views.metrics_view, name="metrics")]
