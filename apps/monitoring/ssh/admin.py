from django.contrib import admin

from .models import KnownHostKey, SSHCounter


@admin.register(SSHCounter)
class SSHCounterAdmin(admin.ModelAdmin):
    list_display = ("name", "cluster", "command", "comparison", "threshold", "unit", "interval_s", "enabled")
    list_filter = ("cluster", "enabled", "comparison")
    search_fields = ("name", "command", "cluster__name")
    readonly_fields = ("created", "updated")
    list_select_related = ("cluster",)


@admin.register(KnownHostKey)
class KnownHostKeyAdmin(admin.ModelAdmin):
    """Read-only: keys are only ever recorded by a connection (trust on first
    use). Deleting one is how an admin accepts a legitimately changed key."""

    list_display = ("host", "port", "key_type", "fingerprint", "first_seen")
    search_fields = ("host",)
    list_filter = ("key_type",)
    readonly_fields = ("host", "port", "key_type", "key_base64", "fingerprint", "first_seen")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
