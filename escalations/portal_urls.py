from django.urls import path

from escalations import phone_views

app_name = "calls"

urlpatterns = [
    path("", phone_views.call_log, name="log"),
    path("simulate/", phone_views.call_simulate, name="simulate"),
    path("<int:pk>/recording", phone_views.call_recording, name="recording"),
]
