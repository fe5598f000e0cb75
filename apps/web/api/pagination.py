"""Paging of API lists: ``limit`` has a maximum, and a bad one is named.

DRF's LimitOffsetPagination silently clamps a large limit (with max_limit) and
silently ignores a malformed one; a client asking for 10**9 rows or for "x"
should learn that it will not get them, in the API's usual 400 shape."""
from __future__ import annotations

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination

MAX_LIMIT = 500


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    max_limit = MAX_LIMIT

    def get_limit(self, request) -> int:
        text = request.query_params.get(self.limit_query_param)
        if text is None or text == "":
            return self.default_limit
        if not text.isdigit() or int(text) < 1:
            raise ValidationError({self.limit_query_param: [f"{text!r} is not a whole number from 1 to {MAX_LIMIT}"]})
        if len(text) > 6 or int(text) > MAX_LIMIT:
            raise ValidationError({self.limit_query_param: [f"limit may be at most {MAX_LIMIT}"]})
        return int(text)

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                parameter["schema"].update(minimum=1, maximum=MAX_LIMIT)
                parameter["description"] = f"Number of results to return per page (1 to {MAX_LIMIT})."
        return parameters
