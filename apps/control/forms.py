"""Admin forms whose validation spans related rows (a trigger's counters and
actions must belong to the trigger's cluster)."""
from __future__ import annotations

from django import forms
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.core.exceptions import ValidationError

from apps.monitoring import sources

from .models import Trigger


class TriggerForm(forms.ModelForm):
    """Counters of every registered source: Trigger's own many-to-many
    fields, plus a field for each source whose counter model holds the
    relation (made by ``with_source_fields``, saved after the trigger)."""

    class Meta:
        model = Trigger
        fields = "__all__"

    #: The source relations this form adds (their counter model holds the relation).
    source_relations: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            for name in self.source_relations:
                if name in self.fields:
                    self.initial[name] = list(getattr(self.instance, name).values_list("pk", flat=True))

    def _save_m2m(self):
        super()._save_m2m()
        for name in self.source_relations:
            if name in self.cleaned_data:
                getattr(self.instance, name).set(self.cleaned_data[name])

    def clean(self):
        data = super().clean()
        self._require_counters(data)
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

    def _require_counters(self, data) -> None:
        """A trigger without counters would show "ok" for ever: refuse it.
        The many-to-many fields are saved after the trigger row, so this is
        checked here, on the chosen counters, not in Trigger.clean."""
        present = [s.trigger_accessor for s in sources.all() if s.trigger_accessor in self.fields]
        if present and not any(data.get(name) for name in present):
            labels = " or ".join(str(self.fields[name].label) for name in present)
            self.add_error(None, f"A trigger needs at least one counter to watch ({labels}).")


def with_source_fields(form_class: type[TriggerForm]) -> type[TriggerForm]:
    """``form_class`` with a counters field for every registered source whose
    counter model holds the relation to triggers (Trigger's own fields cover
    the others), so admin offers the counters of every source."""
    own = {f.name for f in Trigger._meta.get_fields() if f.many_to_many and not f.auto_created}
    extra = {}
    for source in sources.all():
        name = source.trigger_accessor
        if name not in own:
            extra[name] = forms.ModelMultipleChoiceField(
                source.model.objects.all(), required=False, label=f"{source.label} counters",
                widget=FilteredSelectMultiple(f"{source.label} counters", is_stacked=False))
    if not extra:
        return form_class
    return type(form_class.__name__, (form_class,), {**extra, "source_relations": tuple(extra)})


def counter_fields() -> tuple[str, ...]:
    """The counters fields of the trigger form, one per registered source."""
    return tuple(source.trigger_accessor for source in sources.all())


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
