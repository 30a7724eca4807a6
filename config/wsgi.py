import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
application = get_wsgi_application()

from config.wsgi_routing import LeanWSGIHandler, PathRouter  # noqa: E402  (after Django's setup)

application = PathRouter(application, LeanWSGIHandler())
