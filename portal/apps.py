from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Accounts and portal"

    def ready(self) -> None:
        # Services publish by task name; register the tasks in web processes too (see escalations/apps.py).
        from portal import tasks  # noqa: F401
