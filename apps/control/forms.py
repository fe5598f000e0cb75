"""Admin forms whose validation spans related rows (a trigger's counters and
actions must belong to the trigger's cluster)."""
from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from apps.monitoring import sources

from .models import Trigger


class TriggerForm(forms.ModelForm):
    class Meta:
        model = Trigger
        fields = "__all__"

    def clean(self):
        data = super().clean()
        cluster = data.get("cluster")
        if cluster is None:
            return data
        for source in sources.all():
            field = source.trigger_accessor
            foreign = [c for c in data.get(field) or [] if source.cluster_id(c) != cluster.pk]
            if foreign:
                self.add_error(
                    field,
                    f"Not counters of cluster {cluster}: {', '.join(str(c) for c in foreign)}.",
                )
        return data


class TriggerStepFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        cluster_id = self.instance.cluster_id
        positions = set()
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or form.cleaned_data.get("DELETE"):
                continue
            action = form.cleaned_data.get("action")
            position = form.cleaned_data.get("position")
            if action is not None and cluster_id and action.cluster_id != cluster_id:
                form.add_error(
                    "action",
                    f"Action {action} belongs to cluster {action.cluster}, not to the trigger's cluster.",
                )
            if position is not None:
                if position in positions:
                    form.add_error("position", f"Position {position} is used twice.")
                positions.add(position)
        if cluster_id and not any(
            hasattr(f, "cleaned_data") and f.cleaned_data.get("action") and not f.cleaned_data.get("DELETE")
            for f in self.forms
        ):
            raise ValidationError("A trigger needs at least one action step.")
