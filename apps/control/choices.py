from django.db import models


class NodeState(models.TextChoices):
    PENDING = "pending", "pending (launching)"
    RUNNING = "running", "running"
    DRAINING = "draining", "draining (being removed)"
    TERMINATED = "terminated", "terminated"


class Aggregation(models.TextChoices):
    """Which series a trigger counts breaches on."""

    ANY_NODE = "any", "any node (each node on its own)"
    AVERAGE = "avg", "cluster average"
    MAXIMUM = "max", "cluster maximum"


class MissingData(models.TextChoices):
    """How a missing sample counts, as AWS alarms' TreatMissingData."""

    IGNORE = "ignore", "ignore (neither breaches nor resets)"
    BREACHING = "breaching", "breaching"
    NOT_BREACHING = "not_breaching", "not breaching"


class ExecutionStatus(models.TextChoices):
    """Where a firing stands. BLOCKED and WOULD_FIRE executions never run a
    step: they are history, recorded so an operator sees why nothing happened."""

    PENDING = "pending", "pending"
    RUNNING = "running", "running"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"
    WOULD_FIRE = "would_fire", "would fire (dry run)"
    BLOCKED = "blocked", "blocked (another scaling execution in progress)"
    CANCELLED = "cancelled", "cancelled"

    @classmethod
    def active(cls) -> tuple[str, ...]:
        return (cls.PENDING, cls.RUNNING)

    @classmethod
    def finished(cls) -> tuple[str, ...]:
        return (cls.SUCCEEDED, cls.FAILED, cls.WOULD_FIRE, cls.BLOCKED, cls.CANCELLED)


class StepStatus(models.TextChoices):
    PENDING = "pending", "pending"
    RUNNING = "running", "running"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"
    SKIPPED = "skipped", "skipped"


class PolicyKind(models.TextChoices):
    """How a scaling policy turns counter values into a desired size."""

    TARGET_TRACKING = "target", "target tracking (keep the cluster average at a target)"
    STEP_BANDS = "steps", "step bands (ranges of a counter, each adding or removing nodes)"


class PolicyDirection(models.TextChoices):
    OUT = "out", "scale out"
    IN = "in", "scale in"


class PolicyCounterRole(models.TextChoices):
    METRIC = "metric", "metric (sizes the cluster)"
    READINESS = "readiness", "readiness (a new node serves once it has settled)"
