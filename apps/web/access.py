"""Who may do what in the console and the data API.

Permissions are Django's own (the "admins" and "operators" groups of
apps/control/roles.py hold them), so the console, the API and admin agree:
viewing needs ``control.view_cluster``, firing ``control.fire_trigger``,
node management ``control.manage_nodes``; editing configuration happens only
in admin, with its change permissions.
"""
from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.decorators import login_required, permission_required
from rest_framework.permissions import BasePermission

VIEW = "control.view_cluster"
FIRE = "control.fire_trigger"
MANAGE_NODES = "control.manage_nodes"
EDIT_CONFIGURATION = "control.change_cluster"
#: Reading the whole configuration (GET /api/v1/config; apps/configsync creates it).
VIEW_CONFIG = "control.view_config"


def console_page(perm: str = VIEW) -> Callable:
    """Page decorator: anonymous visitors go to the login page; a logged-in
    user without ``perm`` gets 403 (not a login loop)."""

    def decorate(view: Callable) -> Callable:
        return login_required(permission_required(perm, raise_exception=True)(view))

    return decorate


def has_perm(perm: str) -> type[BasePermission]:
    """A DRF permission class requiring one Django permission."""

    class HasPerm(BasePermission):
        message = f"you need the permission {perm}"

        def has_permission(self, request, view) -> bool:
            return bool(request.user and request.user.is_authenticated and request.user.has_perm(perm))

    HasPerm.__name__ = f"HasPerm_{perm.replace('.', '_')}"
    return HasPerm


CanView = has_perm(VIEW)
CanFire = has_perm(FIRE)
CanManageNodes = has_perm(MANAGE_NODES)
CanViewConfig = has_perm(VIEW_CONFIG)


def console_context(request) -> dict:
    """Template context processor-like helper: what the navigation shows."""
    user = request.user
    return {
        "can_fire": user.has_perm(FIRE),
        "can_manage_nodes": user.has_perm(MANAGE_NODES),
        "can_edit_configuration": user.has_perm(EDIT_CONFIGURATION),
    }
