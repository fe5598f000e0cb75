"""Console pages. Short on purpose: what they show comes from status.py,
what they do from firing.py; live parts re-fetch themselves with
``?partial=1`` (console.js), so the HTML is rendered in one place."""
from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.actions.models import Action
from apps.control.choices import ExecutionStatus, StepStatus
from apps.control.models import Cluster, Execution, ExecutionStep, Node, Trigger
from apps.control.why import explain_execution
from apps.monitoring import series as series_svc
from apps.web import firing, node_list, status, summary
from apps.web.decisions import timeline
from apps.web.graphs import BAND_FROM
from apps.web.access import FIRE, MANAGE_NODES, console_context, console_page
from apps.web.filters import ExecutionFilter, error_lines, execution_rows

from .forms import FireForm


# The cluster page's small graphs (static/monitoring/graph.js draws them over
# this range); each links to its graph page on the same range.
MINI_RANGE = "15m"


def page(request: HttpRequest, template: str, context: dict, partial: str | None = None) -> HttpResponse:
    """Render a page, or only its live part when asked with ?partial=1."""
    context = {**console_context(request), **context}
    if partial and request.GET.get("partial"):
        return render(request, partial, context)
    return render(request, template, context)


@console_page()
def overview(request: HttpRequest) -> HttpResponse:
    return page(request, "console/overview.html", {"clusters": summary.overview()}, "console/_overview.html")


def _node_page(request: HttpRequest, cluster: Cluster) -> dict:
    """The page of nodes shown in full (searched, sorted, ?page=), the
    whole cluster's counter summary, and the live part's query."""
    counters = series_svc.counters_of_cluster(cluster.pk)
    order = node_list.node_order(cluster, request.GET, counters)
    nodes = Paginator(order.ids, node_list.PAGE_SIZE).get_page(request.GET.get("page"))
    shown = status.cluster_status(cluster, nodes=node_list.nodes_by_id(list(nodes.object_list)))
    names = summary.node_names(cluster)
    shown_summary, _ = summary.counter_summaries(counters, names, series_svc.default_store(), shown.at)
    live = request.GET.copy()
    live["partial"] = "1"
    kept = request.GET.copy()
    kept.pop("page", None)
    kept.pop("partial", None)
    return {"s": shown, "nodes_page": nodes, "order": order, "summary": shown_summary,
            "live_query": live.urlencode(), "kept_query": kept.urlencode(),
            "sort_query": _without(kept, "sort"), "mini_band": len(names) > BAND_FROM}


def _without(query, name: str) -> str:
    rest = query.copy()
    rest.pop(name, None)
    return rest.urlencode()


@console_page()
def cluster_detail(request: HttpRequest, name: str) -> HttpResponse:
    cluster = get_object_or_404(Cluster, name=name)
    actions = [(a, firing.plan_action(a)[0].needs_target) for a in Action.objects.filter(cluster=cluster)]
    removers = [a for a, _ in actions if firing.removes_target(a)]
    return page(request, "console/cluster.html",
                {**_node_page(request, cluster), "cluster": cluster, "actions": actions,
                 "remove_actions": removers, "mini_range": MINI_RANGE, "timeline": timeline(cluster)},
                "console/_cluster.html")


def _confirm_and_fire(request: HttpRequest, cluster: Cluster, what: str, plan, fire) -> HttpResponse:
    """GET: the confirmation naming every step; POST: fire, go to the execution."""
    firing.check_may_fire(request.user, [step.action for step in plan])  # PermissionDenied -> 403
    form = FireForm(request.POST if request.method == "POST" else None, cluster=cluster, plan=plan,
                    initial={"target_node": request.GET.get("target_node")})
    if request.method == "POST" and form.is_valid():
        try:
            execution = fire(form.cleaned_data["target_node"])
        except firing.FiringError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Fired {what}: execution #{execution.pk}.")
            return redirect("console:execution", pk=execution.pk)
    return page(request, "console/fire_confirm.html", {"cluster": cluster, "what": what, "plan": plan, "form": form})


@console_page(FIRE)
def fire_trigger(request: HttpRequest, name: str, pk: int) -> HttpResponse:
    trigger = get_object_or_404(Trigger.objects.select_related("cluster"), pk=pk, cluster__name=name)
    return _confirm_and_fire(
        request, trigger.cluster, f"trigger {trigger.name}", firing.plan_trigger(trigger),
        lambda target: firing.fire_trigger_by_hand(trigger, request.user, target),
    )


@console_page(FIRE)
def fire_action(request: HttpRequest, name: str, pk: int) -> HttpResponse:
    action = get_object_or_404(Action.objects.select_related("cluster"), pk=pk, cluster__name=name)
    return _confirm_and_fire(
        request, action.cluster, f"action {action.name}", firing.plan_action(action),
        lambda target: firing.fire_action_by_hand(action, request.user, target),
    )


@require_POST
@console_page(MANAGE_NODES)
def node_collection(request: HttpRequest, pk: int) -> HttpResponse:
    node = get_object_or_404(Node.objects.select_related("cluster"), pk=pk)
    enabled = request.POST.get("enabled") == "1"
    firing.set_collection(node, enabled, request.user)
    messages.success(request, f"Collection from {node.name} {'enabled' if enabled else 'paused'}.")
    return redirect("console:cluster", name=node.cluster.name)


@console_page()
def execution_list(request: HttpRequest) -> HttpResponse:
    rows = execution_rows().annotate(step_running=Exists(
        ExecutionStep.objects.filter(execution=OuterRef("pk"), status=StepStatus.RUNNING)))
    found = ExecutionFilter(request.GET, queryset=rows)
    qs = found.qs if found.is_valid() else Execution.objects.none()  # a bad filter: named, not ignored
    executions = Paginator(qs, 50).get_page(request.GET.get("page"))
    live = request.GET.copy()
    live["partial"] = "1"
    return page(request, "console/executions.html", {
        "live_query": live.urlencode(),
        "executions": executions, "filters": request.GET, "filter_errors": error_lines(found), "clusters": Cluster.objects.order_by("name"),
        "statuses": ExecutionStatus.choices, "triggers": Trigger.objects.select_related("cluster"),
    }, "console/_executions.html")


@console_page()
def execution_detail(request: HttpRequest, pk: int) -> HttpResponse:
    execution = get_object_or_404(
        Execution.objects.select_related("cluster", "trigger", "action", "fired_by_user", "target_node"), pk=pk
    )
    steps = list(execution.steps.order_by("position"))
    return page(request, "console/execution.html",
                {"e": execution, "steps": steps, "why": explain_execution(execution),
                 **shown_status(execution, steps)}, "console/_execution.html")


def shown_status(execution: Execution, steps: list[ExecutionStep]) -> dict:
    """The header's status: "running" as soon as a step runs, even while the
    execution's own record still says pending (the chain marks it later)."""
    if execution.status == ExecutionStatus.PENDING and any(s.status == StepStatus.RUNNING for s in steps):
        return {"shown_status": ExecutionStatus.RUNNING.value, "shown_status_label": ExecutionStatus.RUNNING.label}
    return {"shown_status": execution.status, "shown_status_label": execution.get_status_display()}


@require_POST
@console_page(FIRE)
def execution_resume(request: HttpRequest, pk: int) -> HttpResponse:
    execution = get_object_or_404(Execution, pk=pk)
    try:
        firing.resume_by_hand(execution, request.user)
    except firing.FiringError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Execution #{execution.pk} resumed.")
    return redirect("console:execution", pk=execution.pk)
