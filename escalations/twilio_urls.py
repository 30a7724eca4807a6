from django.urls import path

from escalations import twilio_views

app_name = "twilio"

urlpatterns = [
    path("status/<int:page_id>/", twilio_views.page_status, name="page-status"),
    path("voice/page/<int:page_id>/", twilio_views.voice_page, name="voice-page"),
    path("voice/page/<int:page_id>/gather/", twilio_views.voice_page_gather, name="voice-page-gather"),
]
