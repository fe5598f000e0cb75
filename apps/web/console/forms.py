from __future__ import annotations

from django import forms

from apps.control.models import Cluster
from apps.web.firing import PlannedStep, firable_nodes


class FireForm(forms.Form):
    """The confirmation of a firing: the target node, required when a step acts on one."""

    target_node = forms.ModelChoiceField(queryset=None, required=False, empty_label="— none —")

    def __init__(self, *args, cluster: Cluster, plan: list[PlannedStep], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["target_node"]
        field.queryset = firable_nodes(cluster)
        field.required = any(step.needs_target for step in plan)
        field.help_text = (
            "Required: a step acts on the target node." if field.required
            else "Optional: the node e-mails and scripts refer to."
        )
