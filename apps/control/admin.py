from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join

from apps.actions.contract import FIRE_PERMISSION
from apps.monitoring.jmx.models import JVM
from apps.monitoring.ssh.models import SSHCounter

from .forms import TriggerForm, TriggerStepFormSet, counter_fields, with_source_fields
from .models import Cluster, Execution, ExecutionStep, Node, Trigger, TriggerAction
from .why import explain_execution

AUDIT = ("created", "updated")


class NodeInline(admin.TabularInline):
    model = Node
    extra = 0
    fields = ("name", "address", "ssh_port", "state", "collection_enabled", "protected",
              "ec2_instance_id", "launched_by_pyscaler")
    readonly_fields = ("launched_by_pyscaler",)
    show_change_link = True


class JVMInline(admin.TabularInline):
    model = JVM
    extra = 0
    fields = ("name", "jmx_port", "username", "password_ref")
    show_change_link = True


class SSHCounterInline(admin.TabularInline):
    model = SSHCounter
    extra = 0
    fields = ("name", "command", "comparison", "threshold", "interval_s", "unit", "enabled")
    show_change_link = True


@admin.register(Cluster)
class ClusterAdmin(admin.ModelAdmin):
    list_display = ("name", "node_count", "min_size", "max_size", "max_step_size", "load_balancer", "updated")
    search_fields = ("name", "description")
    readonly_fields = AUDIT
    inlines = [NodeInline, JVMInline, SSHCounterInline]
    fieldsets = (
        (None, {"fields": ("name", "description", ("min_size", "max_size", "max_step_size"))}),
        ("SSH defaults", {"fields": ("ssh_user", "ssh_port", "ssh_key_path", "ssh_password_ref")}),
        ("EC2 launch settings", {
            "classes": ("collapse",),
            "fields": ("ec2_region", "ec2_ami", "ec2_instance_type", "ec2_subnet_id",
                       "ec2_security_group_ids", "ec2_key_name", "ec2_tags",
                       "target_group_arn", "classic_elb_name"),
        }),
        ("Audit", {"fields": AUDIT}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_nodes=Count("nodes"))

    @admin.display(description="nodes", ordering="_nodes")
    def node_count(self, obj):
        return obj._nodes

    @admin.display(description="load balancer")
    def load_balancer(self, obj):
        return obj.target_group_arn.rsplit(":", 1)[-1] if obj.target_group_arn else obj.classic_elb_name or "—"


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    list_display = ("name", "cluster", "address", "state", "collection_enabled", "protected",
                    "ec2_instance_id", "launched_by_pyscaler", "created")
    list_filter = ("cluster", "state", "collection_enabled", "protected", "launched_by_pyscaler")
    search_fields = ("name", "address", "ec2_instance_id")
    readonly_fields = AUDIT + ("launched_by_pyscaler",)
    list_select_related = ("cluster",)


class TriggerActionInline(admin.TabularInline):
    model = TriggerAction
    formset = TriggerStepFormSet
    extra = 1
    fields = ("position", "action")
    ordering = ("position",)
    autocomplete_fields = ("action",)


@admin.register(Trigger)
class TriggerAdmin(admin.ModelAdmin):
    form = TriggerForm
    list_display = ("name", "cluster", "aggregation", "timing_minutes", "cooldown_s", "missing_data",
                    "dry_run", "enabled")
    list_filter = ("cluster", "enabled", "dry_run", "aggregation")
    search_fields = ("name", "description", "cluster__name")
    readonly_fields = AUDIT + ("counting_since", "last_fired_at")
    filter_horizontal = ("ssh_counters", "jmx_counters")
    inlines = [TriggerActionInline]
    list_select_related = ("cluster",)
    fieldsets = (
        (None, {"fields": ("cluster", "name", "description", "enabled", "dry_run")}),
        ("Counters", {"fields": ("ssh_counters", "jmx_counters")}),
        ("When to fire", {"fields": ("timing_minutes", "aggregation", "missing_data", "cooldown_s",
                                     "counting_since", "last_fired_at")}),
        ("Audit", {"fields": AUDIT}),
    )

    def get_fieldsets(self, request, obj=None):
        """The counters of every registered counter source, not only SSH and JMX."""
        return [(name, {**options, "fields": counter_fields()}) if name == "Counters" else (name, options)
                for name, options in self.fieldsets]

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = with_source_fields(self.form)
        return super().get_form(request, obj, change, **kwargs)


# ---------------------------------------------------------------------------
# Executions: the scaling history, read-only (rows are written by the chain
# runner). Failed executions can be resumed from here.
# ---------------------------------------------------------------------------


class ReadOnlyMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ExecutionStepInline(ReadOnlyMixin, admin.TabularInline):
    model = ExecutionStep
    extra = 0
    can_delete = False
    fields = ("position", "action_name", "kind", "status", "started", "finished", "attempts", "params",
              "output", "error")
    readonly_fields = fields
    ordering = ("position",)


@admin.register(Execution)
class ExecutionAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("id", "created", "cluster", "what", "fired_by", "status", "target_node_name",
                    "size_before", "size_after", "duration")
    list_filter = ("status", "cluster", "automatic", "trigger")
    search_fields = ("fired_by", "target_node_name", "cluster__name", "trigger__name", "action__name")
    list_select_related = ("cluster", "trigger", "action", "policy")
    date_hierarchy = "created"
    inlines = [ExecutionStepInline]
    actions = ["resume_selected"]
    fieldsets = (
        (None, {"fields": ("cluster", "trigger", "action", "policy", "status", "automatic", "fired_by", "fired_by_user",
                           "why", "target_node", "target_node_name", "created", "started", "finished",
                           "size_before", "size_after", "log")}),
        # The words above say it for people; the records stay for diagnosis.
        ("Recorded data", {"classes": ("collapse",), "fields": ("reasons", "data")}),
    )
    readonly_fields = ("cluster", "trigger", "action", "policy", "status", "automatic", "fired_by", "fired_by_user",
                       "why", "target_node", "target_node_name", "created", "started", "finished",
                       "size_before", "size_after", "log", "reasons", "data")

    @admin.display(description="why")
    def why(self, obj):
        """The console's words (why.py), and a link to the console page with the chart."""
        sentences = format_html_join("", "<p>{}</p>", ((s,) for s in explain_execution(obj).sentences))
        try:
            url = reverse("console:execution", args=[obj.pk])
        except NoReverseMatch:
            return sentences
        return format_html('{}<p><a href="{}">Open in the console</a> (with the chart of the breaching '
                           'values)</p>', sentences, url)

    @admin.display(description="trigger / action / policy")
    def what(self, obj):
        if obj.trigger_id:
            return f"trigger {obj.trigger.name}"
        if obj.policy_id:
            return f"policy {obj.policy.name}"
        return f"action {obj.action.name}" if obj.action_id else "—"

    @admin.display(description="duration")
    def duration(self, obj):
        seconds = obj.duration_s
        return "—" if seconds is None else f"{seconds:.1f} s"

    @admin.action(description="Resume the selected failed executions from their failed step",
                  permissions=["fire"])
    def resume_selected(self, request, queryset):
        from .executions import FiringError, check_may_resume, resume

        for execution in queryset:
            try:
                # As on the console: the recorded kinds of the steps that run
                # again say which permissions that takes.
                check_may_resume(request.user, execution)
                resume(execution, user=request.user)
            except PermissionDenied as exc:
                self.message_user(request, f"execution #{execution.pk}: {exc}", messages.ERROR)
            except FiringError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(request, f"execution #{execution.pk} resumed", messages.SUCCESS)

    def has_fire_permission(self, request):
        return request.user.has_perm(FIRE_PERMISSION)


from . import policy_admin  # noqa: E402,F401 - registers the scaling policies' admin
