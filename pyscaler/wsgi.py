"""WSGI entry point (gunicorn pyscaler.wsgi)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pyscaler.settings")
application = get_wsgi_application()

# gunicorn runs no system checks: refuse placeholder or short secrets here.
from pyscaler.secret_checks import refuse_weak_secrets  # noqa: E402

refuse_weak_secrets()
