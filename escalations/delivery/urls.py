from django.urls import path

from escalations.delivery import views

urlpatterns = [
    path("status/<int:page_id>/", views.page_status, name="page-status"),
    path("sms/", views.sms_inbound, name="sms-inbound"),
    path("voice/page/<int:page_id>/", views.voice_page, name="voice-page"),
    path("voice/page/<int:page_id>/gather/", views.voice_page_gather, name="voice-page-gather"),
]
