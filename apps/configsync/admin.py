"""Admin: remote instances (with a sync button: plan first, then apply),
the sync records, and the configuration's export (download) and import
(upload, plan shown, then apply). Import and sync change configuration:
only users who may add, change and delete every kind of object (admins)."""
from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from . import sections
from .document import FORMATS, dump, export_document
from .importing import digest, import_text
from .models import RemoteInstance, SyncRecord
from .sections import ConfigError
from .sync import sync

VIEW_CONFIG = "control.view_config"
#: Largest file the import page accepts.
MAX_UPLOAD_BYTES = 8 * 1024 * 1024


def import_permissions() -> list[str]:
    """What importing may do: add, change and delete every section's objects."""
    perms = []
    for section in [sections.CLUSTERS, *sections.all()]:
        meta = section.model._meta
        perms += [f"{meta.app_label}.{verb}_{meta.model_name}" for verb in ("add", "change", "delete")]
    return perms


def may_import(user) -> bool:
    return user.is_active and user.has_perms(import_permissions())


@admin.register(RemoteInstance)
class RemoteInstanceAdmin(admin.ModelAdmin):
    list_display = ("name", "base_url", "clusters", "prune", "last_sync")
    fields = ("name", "base_url", "token_ref", "ca_file", "clusters", "excludes", "prune", "timeout_s")
    change_form_template = "admin/configsync/remoteinstance/change_form.html"
    change_list_template = "admin/configsync/remoteinstance/change_list.html"

    @admin.display(description="last sync")
    def last_sync(self, obj):
        record = obj.records.first()
        return "—" if record is None else str(record)

    def get_urls(self):
        own = [
            path("<int:pk>/sync/", self.admin_site.admin_view(self.sync_view), name="configsync_sync"),
            path("export/", self.admin_site.admin_view(self.export_view), name="configsync_export"),
            path("import/", self.admin_site.admin_view(self.import_view), name="configsync_import"),
        ]
        return own + super().get_urls()

    def _context(self, request, title: str, **extra) -> dict:
        return {**self.admin_site.each_context(request), "opts": self.model._meta, "title": title, **extra}

    def sync_view(self, request, pk: int):
        """GET: the plan (a dry run against the remote's answer now); POST: apply."""
        if not may_import(request.user):
            raise PermissionDenied
        remote = get_object_or_404(RemoteInstance, pk=pk)
        apply = request.method == "POST"
        result = sync(remote, dry_run=not apply, user=request.user,
                      expect=request.POST.get("plan_digest", "") if apply else None)
        if apply:
            level = messages.SUCCESS if result.ok else messages.ERROR
            text = result.record.plan.strip().splitlines()[-1] if result.ok else result.record.error
            self.message_user(request, f"sync from {remote.name}: {text}", level)
            return redirect(reverse("admin:configsync_syncrecord_change", args=[result.record.pk]))
        return TemplateResponse(request, "admin/configsync/sync.html", self._context(
            request, f"Sync from {remote.name}", remote=remote, record=result.record,
            plan_digest=digest(result.plan) if result.plan else ""))

    def export_view(self, request):
        if not request.user.has_perm(VIEW_CONFIG):
            raise PermissionDenied
        fmt = request.GET.get("format", "yaml")
        fmt = fmt if fmt in FORMATS else "yaml"
        response = HttpResponse(dump(export_document(), fmt),
                                content_type="application/json" if fmt == "json" else "application/yaml")
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="pyscaler-config-{stamp}.{fmt}"'
        return response

    def import_view(self, request):
        """Upload or paste a file, see its plan (a dry run), then apply it."""
        if not may_import(request.user):
            raise PermissionDenied
        context = self._context(request, "Import configuration", text="", prune=False)
        if request.method == "POST":
            context.update(self._import_post(request))
            if context.pop("done", False):
                return redirect(reverse("admin:configsync_remoteinstance_changelist"))
        return TemplateResponse(request, "admin/configsync/import.html", context)

    def _import_post(self, request) -> dict:
        upload = request.FILES.get("file")
        if upload is not None and upload.size > MAX_UPLOAD_BYTES:
            return {"error": f"the file is larger than {MAX_UPLOAD_BYTES} bytes"}
        try:
            text = upload.read().decode() if upload is not None else request.POST.get("text", "")
        except UnicodeDecodeError:
            return {"error": "the file is not UTF-8 text"}
        prune = request.POST.get("prune") == "on"
        apply = request.POST.get("apply") == "yes"
        try:
            plan = import_text(text, prune=prune, dry_run=not apply,
                               expect=request.POST.get("plan_digest", "") if apply else None)
        except ConfigError as exc:
            return {"text": text, "prune": prune, "error": f"import refused, nothing changed: {exc}"}
        if apply:
            self.message_user(request, f"configuration imported: {plan.summary()}", messages.SUCCESS)
            return {"done": True}
        return {"text": text, "prune": prune, "plan": plan, "plan_digest": digest(plan)}


@admin.register(SyncRecord)
class SyncRecordAdmin(admin.ModelAdmin):
    list_display = ("started", "remote_name", "by", "dry_run", "ok", "summary")
    list_filter = ("ok", "dry_run", "remote_name")
    fields = ("remote", "remote_name", "url", "by", "user", "started", "dry_run", "ok", "plan", "error")
    readonly_fields = fields

    @admin.display(description="result")
    def summary(self, obj):
        return obj.plan.strip().splitlines()[-1] if obj.ok and obj.plan else obj.error[:120]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
