"""Filter sets shared by the data API and the console pages.

One FilterSet per list, so /api/v1/executions and the console's executions
page accept the same parameters and reject a bad one with the same words:
the API answers 400 ``{"<parameter>": ["<what is wrong>"]}`` (django-filter's
DRF backend), the page shows the same text above an empty list.

Error messages carry the offending value as a ``%(value)r`` parameter, never
spliced into the message: django-filter formats ``message % params``, so a
"%" typed into a query string must not reach the format string.
"""
from __future__ import annotations

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet

from apps.control.choices import ExecutionStatus
from apps.control.models import Execution, Node
from apps.monitoring.series import SeriesQueryError, parse_ids


class _IdField(forms.CharField):
    """One database id, as the series API reads ids (digits, at most 18)."""

    def __init__(self, *, what: str, **kwargs) -> None:
        self.what = what
        super().__init__(strip=False, **kwargs)

    def to_python(self, value):
        text = super().to_python(value)
        if text in self.empty_values:
            return None
        try:
            (pk,) = parse_ids(self.what, [text])
        except (SeriesQueryError, ValueError):
            raise ValidationError(f"%(value)r is not a {self.what} id", code="invalid",
                                  params={"value": text}) from None
        return pk


class _TrueFalseField(forms.CharField):
    """true/1/yes or false/0/no, any case. Django's NullBooleanField would
    read anything else as "no filter"; a typo here should be named instead."""

    TRUE = ("true", "1", "yes")
    FALSE = ("false", "0", "no")

    def __init__(self, **kwargs) -> None:
        super().__init__(strip=False, **kwargs)

    def to_python(self, value):
        text = super().to_python(value)
        if text in self.empty_values:
            return None
        lowered = text.strip().lower()
        if lowered in self.TRUE:
            return True
        if lowered in self.FALSE:
            return False
        raise ValidationError("%(value)r is not true or false", code="invalid", params={"value": text})


class IdFilter(django_filters.Filter):
    field_class = _IdField


class TrueFalseFilter(django_filters.Filter):
    field_class = _TrueFalseField


class ExecutionFilter(django_filters.FilterSet):
    cluster = django_filters.CharFilter(field_name="cluster__name", strip=False)
    status = django_filters.ChoiceFilter(
        choices=ExecutionStatus.choices,
        error_messages={"invalid_choice": "%(value)r is not one of " + ", ".join(ExecutionStatus.values)},
    )
    trigger = IdFilter(field_name="trigger_id", what="trigger")
    automatic = TrueFalseFilter()

    class Meta:
        model = Execution
        fields = ["cluster", "status", "trigger", "automatic"]


def execution_rows() -> QuerySet[Execution]:
    """Executions with what their list rows show, newest first (the model's order)."""
    return Execution.objects.select_related("cluster", "trigger", "action", "policy", "fired_by_user")


def error_lines(filterset: django_filters.FilterSet) -> list[str]:
    """A filter set's errors as "parameter: what is wrong" lines (for pages)."""
    return [f"{name}: {' '.join(messages)}" for name, messages in filterset.errors.items()]


class NodeFilter(django_filters.FilterSet):
    """The cluster page's and /api/v1/clusters/<name>'s node search: ``q``
    finds nodes whose name or address contains it (any case)."""

    q = django_filters.CharFilter(method="search", max_length=200)

    class Meta:
        model = Node
        fields = ["q"]

    def search(self, queryset: QuerySet[Node], name: str, value: str) -> QuerySet[Node]:
        return queryset.filter(Q(name__icontains=value) | Q(address__icontains=value))
