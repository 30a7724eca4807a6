from django.urls import path

from escalations.slack import views

app_name = "slack"

urlpatterns = [
    path("interactivity/", views.interactivity, name="interactivity"),
    path("commands/", views.command, name="command"),
]
