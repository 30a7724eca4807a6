from django.urls import path

from escalations.phone import setup_views, views

app_name = "calls"

urlpatterns = [
    path("", views.call_log, name="log"),
    path("simulate/", views.call_simulate, name="simulate"),
    path("<int:pk>/recording", views.call_recording, name="recording"),
    path("lines/", setup_views.line_list, name="lines"),
    path("lines/new/", setup_views.line_new, name="line_new"),
    path("lines/<int:pk>/", setup_views.line_edit, name="line"),
    path("lines/<int:pk>/options/new/", setup_views.option_new, name="option_new"),
    path("lines/<int:pk>/options/<int:option>/", setup_views.option_edit, name="option"),
    path("lines/<int:pk>/options/<int:option>/delete/", setup_views.option_delete, name="option_delete"),
    path("blocked/", setup_views.blocked_list, name="blocked"),
    path("blocked/<int:pk>/delete/", setup_views.blocked_remove, name="blocked_remove"),
    path("directory/", setup_views.directory_list, name="directory"),
    path("directory/new/", setup_views.customer_new, name="customer_new"),
    path("directory/import/", setup_views.directory_import, name="directory_import"),
    path("directory/<int:pk>/", setup_views.customer_edit, name="customer"),
    path("directory/<int:pk>/delete/", setup_views.customer_delete, name="customer_delete"),
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
