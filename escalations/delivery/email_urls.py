from django.urls import path

from escalations.delivery import email_views

app_name = "email"

urlpatterns = [
    path("action/<str:token>/", email_views.email_action, name="action"),
]
