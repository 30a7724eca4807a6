from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Accounts and portal"

    def ready(self) -> None:
        from allauth.mfa.signals import authenticator_added

        from portal.staff_mfa import record_enrolment

        authenticator_added.connect(record_enrolment, dispatch_uid="portal.staff_mfa.record_enrolment")
        # Services publish by task name; register the tasks in web processes too (see escalations/apps.py).
        from portal import tasks  # noqa: F401
