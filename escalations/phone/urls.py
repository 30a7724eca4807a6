from django.urls import path

from escalations.phone import views

app_name = "calls"

urlpatterns = [
    path("", views.call_log, name="log"),
    path("simulate/", views.call_simulate, name="simulate"),
    path("<int:pk>/recording", views.call_recording, name="recording"),
]

# Twilio's webhooks for the emergency line, served under /twilio/ (namespace "twilio") with the delivery
# callbacks: see config/urls.py.
twilio_urlpatterns = [
    path("voice/line/incoming/", views.line_incoming, name="phone_line_incoming"),
    path("voice/line/menu/", views.line_menu, name="phone_line_menu"),
    path("voice/line/record/", views.line_record, name="phone_line_record"),
    path("voice/line/recorded/", views.line_recorded, name="phone_line_recorded"),
    path("voice/line/recording-status/", views.line_recording_status, name="phone_line_recording_status"),
    path("voice/line/transcription/", views.line_transcription, name="phone_line_transcription"),
    path("voice/line/status/", views.line_status, name="phone_line_status"),
    path("voice/line/dial-done/", views.line_dial_done, name="phone_line_dial_done"),
    path("voice/line/whisper/", views.line_whisper, name="phone_line_whisper"),
    path("voice/line/whisper/accept/", views.line_whisper_accept, name="phone_line_whisper_accept"),
]
