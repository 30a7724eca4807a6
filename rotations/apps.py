from django.apps import AppConfig


class RotationsConfig(AppConfig):
    name = "rotations"
    verbose_name = "Rosters"

    def ready(self) -> None:
        # Services publish by task name; register the tasks in web processes too (see escalations/apps.py).
        from rotations import tasks  # noqa: F401
