"""Clusters, nodes and triggers: the configuration the evaluator and the
action chains work on."""
from __future__ import annotations

from django.apps import apps as django_apps
from django.core.exceptions import ValidationError
from django.conf import settings
from django.db import models

from pyscaler.fields import BoundedPositiveIntegerField, bounded
from pyscaler.secretrefs import validate_secret_ref

from . import validators
from .choices import Aggregation, ExecutionStatus, MissingData, NodeState, StepStatus

from .limits import MAX_CLUSTER_SIZE, MAX_COOLDOWN_S, MAX_STEP_SIZE, MAX_TIMING_MINUTES  # noqa: F401


class Cluster(models.Model):
    name = models.SlugField(
        max_length=100,
        unique=True,
        help_text="Unique; used in URLs, the fire_action command and alerts.",
    )
    description = models.TextField(blank=True)
    min_size = BoundedPositiveIntegerField(
        default=0, validators=bounded(0, MAX_CLUSTER_SIZE),
        help_text="RemoveEc2Node never shrinks the cluster below this (0 allowed).",
    )
    max_size = BoundedPositiveIntegerField(
        default=10, validators=bounded(0, MAX_CLUSTER_SIZE),
        help_text="DeployEc2Node never grows the cluster past this.",
    )
    max_step_size = BoundedPositiveIntegerField(
        default=1,
        validators=bounded(1, MAX_STEP_SIZE),
        help_text="Most nodes one DeployEc2Node step may launch at once (1 to 100).",
    )

    # SSH defaults for the cluster's nodes (a node may override them).
    ssh_user = models.CharField(
        max_length=64, blank=True, help_text="Empty: the SSH_USER setting."
    )
    ssh_port = BoundedPositiveIntegerField(
        null=True,
        blank=True,
        validators=bounded(1, 65535),
        help_text="Empty: the SSH_PORT setting.",
    )
    ssh_key_path = models.CharField(
        max_length=500,
        blank=True,
        validators=[validators.validate_absolute_path],
        help_text="Path of a private key file on the worker hosts. Empty: SSH_KEY_PATH or the agent.",
    )
    ssh_password_ref = models.CharField(
        "SSH password reference",
        max_length=200,
        blank=True,
        validators=[validate_secret_ref],
        help_text="env:NAME or file:/path holding the password; never the password itself.",
    )

    # EC2 launch settings (DeployEc2Node).
    ec2_region = models.CharField(
        "EC2 region", max_length=30, blank=True, validators=[validators.validate_aws_region],
        help_text="Empty: the AWS_DEFAULT_REGION setting.",
    )
    ec2_ami = models.CharField(
        "AMI", max_length=30, blank=True, validators=[validators.validate_ami_id]
    )
    ec2_instance_type = models.CharField("instance type", max_length=30, blank=True)
    ec2_subnet_id = models.CharField(
        "subnet", max_length=40, blank=True, validators=[validators.validate_subnet_id]
    )
    ec2_security_group_ids = models.CharField(
        "security groups",
        max_length=500,
        blank=True,
        validators=[validators.validate_security_group_ids],
        help_text="Comma-separated security group ids (sg-…).",
    )
    ec2_key_name = models.CharField("key pair name", max_length=255, blank=True)
    ec2_tags = models.JSONField(
        "tags",
        default=dict,
        blank=True,
        validators=[validators.validate_tags],
        help_text='Extra instance tags as a JSON object, e.g. {"team": "web"}.',
    )
    target_group_arn = models.CharField(
        "ELBv2 target group ARN",
        max_length=300,
        blank=True,
        validators=[validators.validate_target_group_arn],
    )
    classic_elb_name = models.CharField(
        "classic ELB name", max_length=32, blank=True, validators=[validators.validate_elb_name]
    )

    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        # Reading the whole configuration (export, GET /api/v1/config, what a
        # remote instance pulls: apps/configsync). Declared here, not created
        # by a data migration, so it survives a flush like every model permission.
        permissions = [("view_config", "Can view and export the whole configuration")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = {}
        if self.min_size is not None and self.max_size is not None and self.min_size > self.max_size:
            errors["min_size"] = f"Minimum size ({self.min_size}) is larger than maximum size ({self.max_size})."
        if self.target_group_arn and self.classic_elb_name:
            errors["classic_elb_name"] = (
                "Register with one load balancer: either an ELBv2 target group or a classic ELB, not both."
            )
        if errors:
            raise ValidationError(errors)

    @property
    def security_group_id_list(self) -> list[str]:
        return [s.strip() for s in self.ec2_security_group_ids.split(",") if s.strip()]


class Node(models.Model):
    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="nodes")
    name = models.CharField(
        max_length=255, unique=True, validators=[validators.validate_node_name]
    )
    address = models.CharField(
        max_length=255,
        validators=[validators.validate_host],
        help_text="Host name or IP address PyScaler connects to over SSH and JMX.",
    )
    ssh_port = BoundedPositiveIntegerField(
        null=True,
        blank=True,
        validators=bounded(1, 65535),
        help_text="Empty: the cluster's SSH port.",
    )
    ssh_user = models.CharField(max_length=64, blank=True, help_text="Empty: the cluster's SSH user.")
    ssh_key_path = models.CharField(
        max_length=500, blank=True, validators=[validators.validate_absolute_path],
        help_text="Empty: the cluster's key.",
    )
    state = models.CharField(max_length=20, choices=NodeState.choices, default=NodeState.RUNNING)
    collection_enabled = models.BooleanField(
        default=True, help_text="Off: no counters are collected from this node."
    )
    protected = models.BooleanField(
        default=False, help_text="RemoveEc2Node never removes a protected node."
    )
    ec2_instance_id = models.CharField(
        "EC2 instance id",
        max_length=30,
        blank=True,
        null=True,
        unique=True,
        validators=[validators.validate_instance_id],
    )
    launched_by_pyscaler = models.BooleanField(
        default=False,
        help_text="Set when a DeployEc2Node step created the node; only such nodes are removed automatically.",
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["cluster__name", "name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        # Blank must be stored as NULL so that many nodes without an
        # instance id do not collide on the unique constraint.
        if not self.ec2_instance_id:
            self.ec2_instance_id = None
        super().save(*args, **kwargs)


class Trigger(models.Model):
    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="triggers")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    ssh_counters = models.ManyToManyField(
        "ssh.SSHCounter", blank=True, related_name="triggers", verbose_name="SSH counters"
    )
    jmx_counters = models.ManyToManyField(
        "jmx.JMXCounter", blank=True, related_name="triggers", verbose_name="JMX counters"
    )
    timing_minutes = BoundedPositiveIntegerField(
        "timing (minutes)",
        default=5,
        validators=bounded(0, MAX_TIMING_MINUTES),
        help_text="Fire when a counter has breached for this many minutes in a row (0: at the first breach; "
                  "at most 1440, a day).",
    )
    aggregation = models.CharField(
        max_length=10,
        choices=Aggregation.choices,
        default=Aggregation.ANY_NODE,
        help_text="Any node: one node's counter breaching for the whole timing fires the trigger. "
                  "Average or maximum: the cluster's average or highest value at each sample time must breach.",
    )
    missing_data = models.CharField(
        max_length=20,
        choices=MissingData.choices,
        default=MissingData.IGNORE,
        help_text="How a missing sample counts (as AWS alarms' TreatMissingData).",
    )
    cooldown_s = BoundedPositiveIntegerField(
        "cooldown (s)", default=300, validators=bounded(0, MAX_COOLDOWN_S),
        help_text="After firing, the trigger does not fire again for this long (at most 604800 s, a week).",
    )
    dry_run = models.BooleanField(
        default=False, help_text="Record 'would fire' with the reasons and change nothing."
    )
    enabled = models.BooleanField(
        default=True,
        help_text="Counting starts when the trigger is created or enabled, or its counters change: samples "
                  "stamped before that moment never count, so it fires only after timing minutes of its own.")
    counting_since = models.DateTimeField(
        null=True, blank=True, editable=False,
        help_text="When counting (re)started: creation, enabling, or a change of counters. Earlier samples "
                  "do not count.")
    last_fired_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When the trigger last fired. It fires at most once per cooldown, even when several "
                  "evaluators run at once.",
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["cluster__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "name"], name="trigger_unique_name_per_cluster")
        ]
        permissions = [
            ("fire_trigger", "Can fire triggers and actions by hand"),
            ("manage_nodes", "Can deploy, remove and pause nodes from the console"),
        ]

    def __str__(self) -> str:
        return f"{self.cluster}/{self.name}"

    def save(self, *args, **kwargs):
        from .counting import restart_on_save

        restart_on_save(self, kwargs)
        super().save(*args, **kwargs)

    def ordered_actions(self):
        """The trigger's actions in chain order. (The model is looked up by
        name: an import would make every importer of control's models, such
        as collection, depend on apps.actions.)"""
        Action = django_apps.get_model("actions", "Action")  # noqa: N806
        return Action.objects.filter(trigger_links__trigger=self).order_by("trigger_links__position")


class TriggerAction(models.Model):
    """One step of a trigger's chain: which action, at which position."""

    trigger = models.ForeignKey(Trigger, on_delete=models.CASCADE, related_name="steps")
    action = models.ForeignKey("actions.Action", on_delete=models.PROTECT, related_name="trigger_links")
    position = models.PositiveIntegerField(help_text="Steps run in increasing position.")

    class Meta:
        ordering = ["trigger", "position"]
        constraints = [
            models.UniqueConstraint(fields=["trigger", "position"], name="trigger_step_unique_position")
        ]
        verbose_name = "step"

    def __str__(self) -> str:
        return f"{self.position}. {self.action}"

    def clean(self) -> None:
        if self.action_id and self.trigger_id and self.action.cluster_id != self.trigger.cluster_id:
            raise ValidationError(
                {"action": f"Action {self.action} belongs to cluster {self.action.cluster}, "
                           f"not to the trigger's cluster {self.trigger.cluster}."}
            )


# ---------------------------------------------------------------------------
# Executions: the scaling history. Rows are written by apps/control/executions.py
# (firing) and apps/control/chain.py (running steps); they are never edited by
# hand, and they keep copies of what they refer to (user name, node name, action
# kind and parameters) so that later edits and deletions do not rewrite history.
# ---------------------------------------------------------------------------


class Execution(models.Model):
    """One firing of a trigger (or of a single action by hand) and its steps."""

    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="executions")
    trigger = models.ForeignKey(
        Trigger,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="executions",
    )
    action = models.ForeignKey(
        "actions.Action",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="executions",
        help_text="Set when one action was fired by hand rather than a trigger's chain.",
    )
    policy = models.ForeignKey("control.ScalingPolicy", on_delete=models.PROTECT, null=True, blank=True,
                               related_name="executions", help_text="Set when a scaling policy's chain ran.")
    automatic = models.BooleanField(
        default=False, help_text="Fired by the evaluator (not by a person or the command line)."
    )
    fired_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    fired_by = models.CharField(
        max_length=200,
        help_text='Who or what fired it, kept as text: "trigger X", "user alice", "command line (root)".',
    )
    reasons = models.JSONField(
        default=dict,
        blank=True,
        help_text="Why it fired: the trigger, counter, node and the sample values that breached.",
    )
    target_node = models.ForeignKey(
        Node,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="executions",
    )
    target_node_name = models.CharField(max_length=255, blank=True)
    status = models.CharField(
        max_length=20,
        choices=ExecutionStatus.choices,
        default=ExecutionStatus.PENDING,
        db_index=True,
    )
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    size_before = models.PositiveIntegerField(
        null=True, blank=True, help_text="Running nodes of the cluster when it fired."
    )
    size_after = models.PositiveIntegerField(
        null=True, blank=True, help_text="Running nodes of the cluster when it finished."
    )
    data = models.JSONField(
        default=dict,
        blank=True,
        help_text="The chain's context: the reasons plus what each step added (e.g. deployed_node_ids).",
    )
    log = models.TextField(
        blank=True, help_text="Events of the execution as a whole: blocked by, resumed by, ..."
    )

    class Meta:
        ordering = ["-created", "-pk"]
        indexes = [models.Index(fields=["cluster", "status"], name="execution_cluster_status")]

    def __str__(self) -> str:
        what = (self.trigger.name if self.trigger_id else self.action.name if self.action_id
                else self.policy.name if self.policy_id else "?")
        return f"#{self.pk} {self.cluster}/{what} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in ExecutionStatus.finished()

    @property
    def duration_s(self) -> float | None:
        if self.started and self.finished:
            return (self.finished - self.started).total_seconds()
        return None


class ExecutionStep(models.Model):
    """One action of an execution, with a snapshot of the action as it was
    when fired, and what running it gave."""

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField()
    action = models.ForeignKey("actions.Action", on_delete=models.PROTECT, related_name="execution_steps")
    action_name = models.CharField(max_length=100)
    kind = models.CharField(max_length=30)
    params = models.JSONField(default=dict, blank=True)
    timeout_s = models.PositiveIntegerField()
    status = models.CharField(
        max_length=20, choices=StepStatus.choices, default=StepStatus.PENDING, db_index=True
    )
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    output = models.TextField(blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # Delivery bookkeeping: which attempt holds the step, and until when. A
    # redelivered task may take over a step whose lease expired (or whose
    # holder died); a stale holder cannot record its result over a newer one.
    claim = models.CharField(max_length=32, blank=True, editable=False)
    lease_expires = models.DateTimeField(null=True, blank=True, editable=False)
    enqueued = models.DateTimeField(null=True, blank=True, editable=False)
    # What the kind recorded as done so far (committed at once), so a
    # redelivered attempt does not repeat a side effect (e.g. "e-mail sent").
    state = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["execution", "position"]
        constraints = [
            models.UniqueConstraint(fields=["execution", "position"], name="execution_step_unique_position")
        ]

    def __str__(self) -> str:
        return f"#{self.execution_id}.{self.position} {self.action_name} ({self.status})"

    @property
    def duration_s(self) -> float | None:
        if self.started and self.finished:
            return (self.finished - self.started).total_seconds()
        return None


# Scaling policies and their decision records (a module of their own).
from .policy_models import (  # noqa: E402,F401
    PolicyAction, PolicyCounter, PolicyDecision, ScalingPolicy, ScheduleWindow, StepBand)
