from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from .choices import ActionKindChoice


class Action(models.Model):
    """A named, reusable action of one cluster; triggers chain actions in order
    and operators may fire one by hand. Kind-specific parameters live in
    ``params`` and are validated by the kind's class (apps/actions/kinds/)."""

    cluster = models.ForeignKey("control.Cluster", on_delete=models.PROTECT, related_name="actions")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=30, choices=ActionKindChoice.choices)
    params = models.JSONField(
        "parameters",
        default=dict,
        blank=True,
        help_text="A JSON object; which keys each kind takes is listed below the form.",
    )
    timeout_s = models.PositiveIntegerField(
        "timeout (s)",
        default=600,
        validators=[MinValueValidator(1), MaxValueValidator(24 * 3600)],
        help_text="A step still running after this long fails; no worker waits forever.",
    )
    description = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["cluster__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "name"], name="action_unique_name_per_cluster")
        ]

    def __str__(self) -> str:
        return f"{self.cluster}/{self.name} ({self.get_kind_display()})"

    def kind_class(self):
        from .registry import get_kind

        return get_kind(self.kind)

    @property
    def fire_label(self) -> str:
        """The console's button firing this action by hand (its kind's words)."""
        try:
            return self.kind_class().fire_label
        except LookupError:
            return "Fire…"

    def clean_fields(self, exclude=None) -> None:
        """The kind validates the parameters here, beside the fields' own
        checks, so a form whose parameters already failed (not JSON) or whose
        kind is unknown does not add the kind's messages about them too."""
        errors: dict = {}
        try:
            super().clean_fields(exclude=exclude)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        skip = set(exclude or ()) | set(errors)
        if not skip & {"kind", "params"}:
            try:
                self._clean_params()
            except ValidationError as exc:
                errors = exc.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)

    def _clean_params(self) -> None:
        if not self.kind or self.kind not in ActionKindChoice.values:
            return  # the field's own choice validation reports it
        if not isinstance(self.params, dict):
            raise ValidationError({"params": "parameters: must be a JSON object ({...}), "
                                             f"not a {type(self.params).__name__}"})
        cluster = self.cluster if self.cluster_id else None
        self.params = self.kind_class().validate_params(self.params, cluster=cluster)
