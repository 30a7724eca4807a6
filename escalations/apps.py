from django.apps import AppConfig


class EscalationsConfig(AppConfig):
    name = "escalations"
    verbose_name = "Escalations and incidents"

    def ready(self) -> None:
        # Services publish by task name (`current_app.tasks[NAME]`), so every process that publishes must
        # have the tasks registered. Celery's autodiscovery runs in workers and beat only, and finds
        # `<app>.tasks` only: this is the one place where the task modules are imported late.
        from escalations.delivery import tasks as delivery_tasks  # noqa: F401
        from escalations.incidents import tasks as incident_tasks  # noqa: F401
        from escalations.intake import tasks as intake_tasks  # noqa: F401
        from escalations.monitoring import tasks as monitoring_tasks  # noqa: F401
        from escalations.phone import tasks as phone_tasks  # noqa: F401
        from escalations.retention import tasks as retention_tasks  # noqa: F401
        from escalations.slack import tasks as slack_tasks  # noqa: F401
        from escalations.webhooks import tasks as webhook_tasks  # noqa: F401
