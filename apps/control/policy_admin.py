"""Admin of scaling policies (imported by admin.py): the policy with its
counters, schedule windows and chains; a counter's step bands on its own page;
the decision records read-only."""
from __future__ import annotations

from django.contrib import admin

from .policy_forms import PolicyCounterForm, PolicyStepFormSet, StepBandFormSet
from .policy_models import (
    PolicyAction,
    PolicyCounter,
    PolicyDecision,
    ScalingPolicy,
    ScheduleWindow,
    StepBand,
)

AUDIT = ("created", "updated")


class PolicyCounterInline(admin.TabularInline):
    model = PolicyCounter
    form = PolicyCounterForm
    extra = 1
    show_change_link = True  # step bands are edited on the counter's page


class ScheduleWindowInline(admin.TabularInline):
    model = ScheduleWindow
    extra = 0
    fields = ("name", "cron", "duration_minutes", "min_size", "max_size", "desired_size")


class PolicyActionInline(admin.TabularInline):
    model = PolicyAction
    formset = PolicyStepFormSet
    extra = 1
    fields = ("direction", "position", "action")
    ordering = ("direction", "position")
    autocomplete_fields = ("action",)


@admin.register(ScalingPolicy)
class ScalingPolicyAdmin(admin.ModelAdmin):
    list_display = ("name", "cluster", "kind", "enabled", "dry_run", "max_step", "warmup_s",
                    "last_scale_out_at", "last_scale_in_at")
    list_filter = ("cluster", "kind", "enabled", "dry_run")
    search_fields = ("name", "description", "cluster__name")
    readonly_fields = AUDIT + ("last_scale_out_at", "last_scale_in_at")
    list_select_related = ("cluster",)
    inlines = [PolicyCounterInline, ScheduleWindowInline, PolicyActionInline]
    fieldsets = (
        (None, {"fields": ("cluster", "name", "description", "kind", "enabled", "dry_run")}),
        ("Sizing", {"fields": ("tolerance_pct", "max_step", "warmup_s")}),
        ("Stabilization and cooldowns", {"fields": (("scale_out_window_s", "scale_in_window_s"),
                                                    ("scale_out_cooldown_s", "scale_in_cooldown_s"),
                                                    "last_scale_out_at", "last_scale_in_at")}),
        ("Audit", {"fields": AUDIT}),
    )


class StepBandInline(admin.TabularInline):
    model = StepBand
    formset = StepBandFormSet
    extra = 1
    fields = ("lower", "upper", "adjustment")


@admin.register(PolicyCounter)
class PolicyCounterAdmin(admin.ModelAdmin):
    form = PolicyCounterForm
    list_display = ("__str__", "policy", "role", "target")
    list_select_related = ("policy__cluster",)
    inlines = [StepBandInline]

    def has_module_permission(self, request):
        return False  # reached from its policy's page


@admin.register(PolicyDecision)
class PolicyDecisionAdmin(admin.ModelAdmin):
    list_display = ("created", "policy", "summary", "current", "desired", "actual", "repeats", "execution")
    list_filter = ("cluster", "policy", "direction", "dry_run")
    list_select_related = ("policy__cluster", "execution")
    date_hierarchy = "created"
    fields = ("policy", "cluster", "created", "evaluated_at", "repeats", "current", "actual", "raw_desired",
              "desired", "direction", "summary", "inputs", "effects", "dry_run", "execution")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False
