from django.urls import path

from escalations.delivery import views as twilio_views
from escalations.phone import views as phone_views

app_name = "twilio"

urlpatterns = [
    path("status/<int:page_id>/", twilio_views.page_status, name="page-status"),
    path("sms/", twilio_views.sms_inbound, name="sms-inbound"),
    path("voice/page/<int:page_id>/", twilio_views.voice_page, name="voice-page"),
    path("voice/page/<int:page_id>/gather/", twilio_views.voice_page_gather, name="voice-page-gather"),
    # --- emergency line ---
    path("voice/line/incoming/", phone_views.line_incoming, name="phone_line_incoming"),
    path("voice/line/menu/", phone_views.line_menu, name="phone_line_menu"),
    path("voice/line/record/", phone_views.line_record, name="phone_line_record"),
    path("voice/line/recorded/", phone_views.line_recorded, name="phone_line_recorded"),
    path("voice/line/recording-status/", phone_views.line_recording_status, name="phone_line_recording_status"),
    path("voice/line/transcription/", phone_views.line_transcription, name="phone_line_transcription"),
    path("voice/line/status/", phone_views.line_status, name="phone_line_status"),
    path("voice/line/dial-done/", phone_views.line_dial_done, name="phone_line_dial_done"),
    path("voice/line/whisper/", phone_views.line_whisper, name="phone_line_whisper"),
    path("voice/line/whisper/accept/", phone_views.line_whisper_accept, name="phone_line_whisper_accept"),
    # --- end emergency line ---
]
