"""Admin forms of scaling policies: one choice for a counter of any
registered source, bands that must not overlap, chain steps of the policy's
cluster."""
from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from apps.monitoring import sources

from .policy.inputs import Band, overlapping
from .policy_models import PolicyCounter


def counter_choices() -> list[tuple[str, str]]:
    """Every counter of every source, as "<kind>:<id>"."""
    choices = [("", "---------")]
    for source in sources.all():
        for counter in source.counters().order_by("pk"):
            choices.append((f"{source.kind}:{counter.pk}",
                            f"{source.label} {counter.name} (cluster {source.cluster(counter)})"))
    return choices


class PolicyCounterForm(forms.ModelForm):
    counter_id = forms.ChoiceField(label="counter", choices=())

    class Meta:
        model = PolicyCounter
        fields = ("role", "counter_id", "target")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["counter_id"].choices = counter_choices()
        if self.instance.pk is not None:
            self.initial["counter_id"] = f"{self.instance.source}:{self.instance.counter_id}"

    def clean_counter_id(self) -> int:
        kind, _, pk = (self.cleaned_data.get("counter_id") or "").partition(":")
        if not pk.isdigit():
            raise ValidationError("Choose a counter.")
        self.instance.source = kind
        return int(pk)


def _live(formset) -> list[forms.Form]:
    return [f for f in formset.forms if hasattr(f, "cleaned_data") and f.cleaned_data
            and not f.cleaned_data.get("DELETE")]


class StepBandFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        bands = []
        for form in _live(self):
            data = form.cleaned_data
            if data.get("adjustment") is not None and (data.get("lower") is not None
                                                       or data.get("upper") is not None):
                bands.append((Band(data.get("lower"), data.get("upper"), data["adjustment"]), form))
        pair = overlapping([b for b, _ in bands])
        if pair is not None:
            form = next(f for b, f in bands if b is pair[1])
            form.add_error("lower", f"Band {pair[1].describe()} overlaps band {pair[0].describe()}.")


class PolicyStepFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        cluster_id = self.instance.cluster_id
        seen = set()
        for form in _live(self):
            action, position = form.cleaned_data.get("action"), form.cleaned_data.get("position")
            direction = form.cleaned_data.get("direction")
            if action is not None and cluster_id and action.cluster_id != cluster_id:
                form.add_error("action", f"Action {action} belongs to cluster {action.cluster}, not to the "
                                         "policy's cluster.")
            if position is not None:
                if (direction, position) in seen:
                    form.add_error("position", f"Position {position} is used twice in the {direction} chain.")
                seen.add((direction, position))
