import gc
import os

from django.core.wsgi import get_wsgi_application

# Forgetting DJANGO_SETTINGS_MODULE must not start a DEBUG, MFA-off demo: production refuses to
# start without its secrets, and bin/run, bin/test and the benches choose their settings.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
application = get_wsgi_application()

from config.wsgi_routing import LeanWSGIHandler, PathRouter  # noqa: E402  (after Django's setup)
from escalations.intake.wsgi import PagerDutyWSGI  # noqa: E402

# /integrations/: PagerDuty events answered without Django's request machinery, the other intake
# paths by Django's handler without the portal's middleware; everything else by the full stack.
application = PathRouter(application, PagerDutyWSGI(LeanWSGIHandler()))  # type: ignore[assignment]

# Django, the apps and everything imported live as long as the process: move them out of the cyclic
# collector's reach. Otherwise every full collection walks them again, tens of milliseconds landing
# on whichever request happens to allocate (on call for 1,000 teams builds ~20,000 objects).
gc.freeze()
