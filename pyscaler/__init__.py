"""PyScaler: monitoring and autoscaling for clusters of JVM services."""
from .celery import app as celery_app

__all__ = ("celery_app",)
