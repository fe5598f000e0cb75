"""The client's address for django-axes' lockout by address.

Behind nginx (BEHIND_TLS_PROXY) every request comes from the proxy, so
REMOTE_ADDR would lock every user out at once; deploy/nginx passes the real
address in X-Real-IP (and appends it to X-Forwarded-For). Those headers are
read only behind the proxy: anyone can send them to a directly exposed app."""
from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    meta = request.META
    if getattr(settings, "BEHIND_TLS_PROXY", False):
        real = meta.get("HTTP_X_REAL_IP", "").strip()
        if real:
            return real
        forwarded = [part.strip() for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if forwarded:
            return forwarded[-1]  # the hop nginx added; earlier entries are the client's say-so
    return meta.get("REMOTE_ADDR")
