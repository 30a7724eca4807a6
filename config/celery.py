"""The Celery application. Its configuration, beat schedule included, lives in Django settings."""

import gc
import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("backstop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _freeze_startup_objects(**_kwargs) -> None:
    # As in config/wsgi.py: long-lived start-up objects stay out of full garbage collections.
    gc.freeze()
