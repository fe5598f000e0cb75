"""The web layer: console pages, the counter graph, /api/v1 and /metrics.

It reads control's and monitoring's models and calls their services; nothing
in apps.control, apps.monitoring or apps.actions imports it."""
