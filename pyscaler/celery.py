"""The Celery app. Queues and routes live in settings (CELERY_* names)."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pyscaler.settings")

app = Celery("pyscaler")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(ignore_result=False)
def ping(value: str = "pong") -> dict:
    """Round trip through broker and worker: health checks and tests use it to
    prove a worker really consumes a queue (the reply names the worker host)."""
    return {"value": value, "hostname": ping.request.hostname}
