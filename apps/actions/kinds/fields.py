"""Parameter fields shared by several action kinds."""
from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.template import TemplateSyntaxError


class StringListField(forms.Field):
    """A JSON list of non-empty strings (a single string is taken as a list of one)."""

    def __init__(self, *, item_validator=None, **kwargs):
        self.item_validator = item_validator
        super().__init__(**kwargs)

    def to_python(self, value):
        if value in (None, "", []):
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise ValidationError("must be a list of non-empty strings")
        return [v.strip() for v in value]

    def validate(self, value):
        super().validate(value)
        for item in value:
            if self.item_validator:
                try:
                    self.item_validator(item)
                except ValidationError:
                    raise ValidationError(f"{item!r} is not valid here") from None


class EmailListField(StringListField):
    def validate(self, value):
        forms.Field.validate(self, value)
        for item in value:
            try:
                validate_email(item)
            except ValidationError:
                raise ValidationError(f"{item!r} is not a valid e-mail address") from None


class TemplateField(forms.CharField):
    """Text rendered with Django's template language against the chain's context."""

    def validate(self, value):
        super().validate(value)
        from ..plain_text import ENGINE

        try:
            ENGINE.from_string(value)
        except TemplateSyntaxError as exc:
            raise ValidationError(f"template error: {exc}") from None


def timeout_note() -> str:
    return "The action's timeout bounds the whole step."
