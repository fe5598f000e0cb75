"""The Action's admin form: one clear message per bad input.

Django's JSONField says only "Enter a valid JSON." and the model's own
check then ran on the empty default as well, so text that was not JSON got
three messages, none naming where the text went wrong."""
from __future__ import annotations

import json

from django import forms
from django.core.exceptions import ValidationError

from .models import Action


class ParamsField(forms.JSONField):
    def to_python(self, value):
        if isinstance(value, str) and value.strip():
            try:
                json.loads(value, cls=self.decoder)
            except json.JSONDecodeError as exc:
                raise ValidationError(
                    "parameters: not valid JSON (%(why)s at line %(line)s, column %(column)s); "
                    'write a JSON object such as {"command": "uptime"}, strings in double quotes',
                    code="invalid", params={"why": exc.msg, "line": exc.lineno, "column": exc.colno},
                ) from None
        return super().to_python(value)


class ActionForm(forms.ModelForm):
    params = ParamsField(
        label="Parameters", required=False, initial=dict,
        help_text=Action._meta.get_field("params").help_text,
    )

    class Meta:
        model = Action
        fields = "__all__"
