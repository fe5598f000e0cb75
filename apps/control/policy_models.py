"""Scaling policies: a cluster's desired size from its counters, beside the
triggers (apps/control/policy/ decides, policy_runner.py applies), and the
decision records that explain every change.

Imported by models.py, so Django finds these models in the control app.
Counters are referred to by (source kind, counter id): a policy reads any
registered counter source's counters, and names none (the admin form offers
every source's counters and checks the one chosen belongs to the cluster).
"""
from __future__ import annotations

from django.apps import apps as django_apps
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import models

from apps.monitoring import sources
from pyscaler.fields import BoundedPositiveIntegerField, bounded

from .choices import PolicyCounterRole, PolicyDirection, PolicyKind
from .limits import MAX_CLUSTER_SIZE, MAX_COOLDOWN_S, MAX_STEP_SIZE

#: Longest stabilization window, warm-up and schedule window.
MAX_WINDOW_S = 86400
MAX_WINDOW_MINUTES = 7 * 24 * 60


def _parent(row) -> ScalingPolicy | None:
    """The row's policy, also while admin adds both (the policy not saved yet)."""
    try:
        return row.policy
    except ObjectDoesNotExist:
        return None


class ScalingPolicy(models.Model):
    cluster = models.ForeignKey("control.Cluster", on_delete=models.PROTECT, related_name="policies")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=10, choices=PolicyKind.choices, default=PolicyKind.TARGET_TRACKING)
    enabled = models.BooleanField(default=True)
    dry_run = models.BooleanField(
        default=False, help_text="Record the decisions and 'would fire' executions; change nothing.")
    tolerance_pct = BoundedPositiveIntegerField(
        "tolerance (%)", default=10, validators=bounded(0, 100),
        help_text="Target tracking: no change while the average is within ± this % of the target.")
    scale_out_window_s = BoundedPositiveIntegerField(
        "scale-out stabilization (s)", default=0, validators=bounded(0, MAX_WINDOW_S),
        help_text="Scale out only to the lowest size recommended over this window (0: at once).")
    scale_in_window_s = BoundedPositiveIntegerField(
        "scale-in stabilization (s)", default=300, validators=bounded(0, MAX_WINDOW_S),
        help_text="Scale in only to the highest size recommended over this window (as Kubernetes HPA).")
    scale_out_cooldown_s = BoundedPositiveIntegerField(
        "scale-out cooldown (s)", default=60, validators=bounded(0, MAX_COOLDOWN_S),
        help_text="After a scale-out, no other scale-out for this long (a scale-in never waits for it).")
    scale_in_cooldown_s = BoundedPositiveIntegerField(
        "scale-in cooldown (s)", default=300, validators=bounded(0, MAX_COOLDOWN_S),
        help_text="After any scaling, no scale-in for this long.")
    warmup_s = BoundedPositiveIntegerField(
        "warm-up (s)", default=300, validators=bounded(0, MAX_WINDOW_S),
        help_text="A node launched by PyScaler less than this long ago is left out of the averages and "
                  "counted as capacity (as are launches in flight); so is a node whose readiness counter "
                  "has not settled.")
    max_step = BoundedPositiveIntegerField(
        "max step", default=1, validators=bounded(1, MAX_STEP_SIZE),
        help_text="Most nodes one decision adds or removes (1 to 100).")
    last_scale_out_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_scale_in_at = models.DateTimeField(null=True, blank=True, editable=False)
    #: Earlier evaluations' recommendations, [[iso stamp, size], ...] (stabilization's memory).
    recommendations = models.JSONField(default=list, blank=True, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["cluster__name", "name"]
        verbose_name_plural = "scaling policies"
        constraints = [
            models.UniqueConstraint(fields=["cluster", "name"], name="policy_unique_name_per_cluster")
        ]

    def __str__(self) -> str:
        return f"{self.cluster}/{self.name}"

    def clean(self) -> None:
        if self.enabled and self.cluster_id:
            other = ScalingPolicy.objects.filter(cluster_id=self.cluster_id, enabled=True).exclude(pk=self.pk)
            if other.exists():
                raise ValidationError({"enabled": f"Cluster {self.cluster} already has an enabled policy "
                                                  f"({other.first().name}); two would fight over its size."})

    def chain(self, direction: str):
        """The actions of the scale-out or scale-in chain, in order."""
        Action = django_apps.get_model("actions", "Action")  # noqa: N806
        return Action.objects.filter(policy_links__policy=self, policy_links__direction=direction).order_by(
            "policy_links__position")


class PolicyCounter(models.Model):
    """A counter a policy reads: a metric (with its target, or its step
    bands) or the readiness counter of new nodes."""

    policy = models.ForeignKey(ScalingPolicy, on_delete=models.CASCADE, related_name="counters")
    role = models.CharField(max_length=10, choices=PolicyCounterRole.choices, default=PolicyCounterRole.METRIC)
    source = models.CharField(max_length=sources.MAX_KIND_LENGTH, help_text="The counter source's kind.")
    counter_id = models.PositiveIntegerField()
    target = models.FloatField(
        null=True, blank=True,
        help_text="Target tracking: the cluster average to hold (a readiness counter: unused; a node is "
                  "ready once its value no longer breaches the counter's own threshold).")

    class Meta:
        ordering = ["policy", "pk"]
        constraints = [models.UniqueConstraint(fields=["policy", "role", "source", "counter_id"],
                                               name="policy_counter_unique")]

    def __str__(self) -> str:
        counter = self.counter()
        return f"{self.get_role_display().split(' ')[0]} {counter.name if counter else '(deleted counter)'}"

    @classmethod
    def kind_of(cls, counter) -> str:
        """The counter-source kind of a counter row (asked of the registry)."""
        return next(s.kind for s in sources.all() if isinstance(counter, s.model))

    def counter(self):
        """The counter row, or None when it (or its source) is gone."""
        try:
            return sources.get(self.source).model.objects.filter(pk=self.counter_id).first()
        except sources.UnknownSource:
            return None

    def clean(self) -> None:
        # Every error names counter_id: the admin form's one field for (source, counter).
        try:
            source = sources.get(self.source)
        except sources.UnknownSource:
            raise ValidationError({"counter_id": f"No counter source {self.source!r}."}) from None
        counter = source.model.objects.filter(pk=self.counter_id).first()
        if counter is None:
            raise ValidationError({"counter_id": f"No {source.label} counter with id {self.counter_id}."})
        policy = _parent(self)
        if policy is not None and source.cluster_id(counter) != policy.cluster_id:
            raise ValidationError({"counter_id": f"Counter {counter.name} is not a counter of cluster "
                                                 f"{policy.cluster}."})
        if self.role == PolicyCounterRole.METRIC and policy is not None:
            if policy.kind == PolicyKind.TARGET_TRACKING and not (self.target and self.target > 0):
                raise ValidationError({"target": "Target tracking needs a target above 0 for each metric."})


class StepBand(models.Model):
    """A range of a step-bands policy's counter, lower ≤ value < upper."""

    counter = models.ForeignKey(PolicyCounter, on_delete=models.CASCADE, related_name="bands")
    lower = models.FloatField(null=True, blank=True, help_text="Empty: no lower end.")
    upper = models.FloatField(null=True, blank=True, help_text="Empty: no upper end.")
    adjustment = models.IntegerField(
        validators=bounded(-MAX_STEP_SIZE, MAX_STEP_SIZE),
        help_text="Nodes added (positive) or removed (negative) while the average is in the band.")

    class Meta:
        ordering = ["counter", "lower"]

    def clean(self) -> None:
        if self.lower is None and self.upper is None:
            raise ValidationError({"lower": "A band needs a lower or an upper end."})
        if self.lower is not None and self.upper is not None and self.lower >= self.upper:
            raise ValidationError({"upper": f"Upper end ({self.upper:g}) must be above the lower end "
                                            f"({self.lower:g})."})
        if self.adjustment == 0:
            raise ValidationError({"adjustment": "An adjustment of 0 changes nothing; leave the range out."})


class ScheduleWindow(models.Model):
    """Scheduled capacity: from each time the cron expression names, for
    ``duration_minutes``, the sizes set here apply."""

    policy = models.ForeignKey(ScalingPolicy, on_delete=models.CASCADE, related_name="schedules")
    name = models.CharField(max_length=100)
    cron = models.CharField(
        max_length=100, help_text='When the window opens, in the server\'s time zone: "0 8 * * 1-5" is '
                                  'weekdays at 08:00.')
    duration_minutes = BoundedPositiveIntegerField(
        "duration (minutes)", validators=bounded(1, MAX_WINDOW_MINUTES), help_text="How long it stays open.")
    min_size = BoundedPositiveIntegerField(null=True, blank=True, validators=bounded(0, MAX_CLUSTER_SIZE))
    max_size = BoundedPositiveIntegerField(null=True, blank=True, validators=bounded(0, MAX_CLUSTER_SIZE))
    desired_size = BoundedPositiveIntegerField(null=True, blank=True, validators=bounded(0, MAX_CLUSTER_SIZE))

    class Meta:
        ordering = ["policy", "name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from .policy.schedule import cron_error

        errors = {}
        if error := cron_error(self.cron or ""):
            errors["cron"] = error
        if self.min_size is None and self.max_size is None and self.desired_size is None:
            errors["min_size"] = "Set a minimum, a maximum or a desired size."
        if self.min_size is not None and self.max_size is not None and self.min_size > self.max_size:
            errors["min_size"] = f"Minimum ({self.min_size}) is larger than maximum ({self.max_size})."
        if errors:
            raise ValidationError(errors)


class PolicyAction(models.Model):
    """One step of a policy's scale-out or scale-in chain."""

    policy = models.ForeignKey(ScalingPolicy, on_delete=models.CASCADE, related_name="steps")
    direction = models.CharField(max_length=3, choices=PolicyDirection.choices)
    action = models.ForeignKey("actions.Action", on_delete=models.PROTECT, related_name="policy_links")
    position = models.PositiveIntegerField(help_text="Steps run in increasing position.")

    class Meta:
        ordering = ["policy", "direction", "position"]
        constraints = [models.UniqueConstraint(fields=["policy", "direction", "position"],
                                               name="policy_step_unique_position")]
        verbose_name = "chain step"

    def __str__(self) -> str:
        return f"{self.get_direction_display()} {self.position}. {self.action}"

    def clean(self) -> None:
        policy = _parent(self)
        if self.action_id and policy is not None and self.action.cluster_id != policy.cluster_id:
            raise ValidationError({"action": f"Action {self.action} belongs to cluster {self.action.cluster}, "
                                             f"not to the policy's cluster {policy.cluster}."})


class PolicyDecision(models.Model):
    """One decision of a policy: kept when it changes, an action is taken or
    a guard blocks one; the newest evaluation updates the latest row when
    nothing of that changed (``repeats``), so the latest is always there."""

    policy = models.ForeignKey(ScalingPolicy, on_delete=models.CASCADE, related_name="decisions")
    cluster = models.ForeignKey("control.Cluster", on_delete=models.CASCADE, related_name="decisions")
    created = models.DateTimeField(db_index=True)
    evaluated_at = models.DateTimeField(help_text="The newest evaluation that came to this decision.")
    repeats = models.PositiveIntegerField(default=0, help_text="Later evaluations with the same outcome.")
    current = models.PositiveIntegerField(help_text="Capacity: in-service + warming + in-flight nodes.")
    actual = models.PositiveIntegerField(default=0, help_text="Running nodes.")
    raw_desired = models.PositiveIntegerField()
    desired = models.PositiveIntegerField()
    direction = models.CharField(max_length=4)
    summary = models.CharField(max_length=500)
    inputs = models.JSONField(default=dict, help_text="Counters (value, nodes), node counts, schedule.")
    effects = models.JSONField(default=list, help_text="Each guard's effect, in order.")
    outcome = models.CharField(max_length=200, editable=False)
    dry_run = models.BooleanField(default=False)
    execution = models.ForeignKey("control.Execution", on_delete=models.SET_NULL, null=True, blank=True,
                                  related_name="decisions")

    class Meta:
        ordering = ["-created", "-pk"]
        indexes = [models.Index(fields=["cluster", "created"], name="decision_cluster_created")]

    def __str__(self) -> str:
        return f"{self.policy} {self.created:%Y-%m-%d %H:%M:%S}: {self.summary}"
