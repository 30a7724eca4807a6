from django.urls import path

from rotations import ical

app_name = "ical"

urlpatterns = [
    path("user/<str:token>.ics", ical.user_feed, name="user"),
    path("team/<str:token>.ics", ical.team_feed, name="team"),
]
