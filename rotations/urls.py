from django.urls import path

from rotations import views

app_name = "rotations"

urlpatterns = [
    path("teams/<slug:slug>/handover-note/", views.handover_note, name="handover-note"),
    path("teams/<slug:slug>/handovers/", views.handover_log, name="handover-log"),
]
