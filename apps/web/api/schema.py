"""OpenAPI pieces every /api/v1 resource shares (drf-spectacular)."""
from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse

#: A database id (64-bit): the API answers 400/404 beyond, never an overflow.
ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": 999_999_999_999_999_999}
BAD_PARAMETER = OpenApiResponse(
    OpenApiTypes.OBJECT, description='A bad parameter, named: {"<parameter>": ["<what is wrong>"]}.'
)
NOT_FOUND = OpenApiResponse(OpenApiTypes.OBJECT, description="No such object.")
FORBIDDEN = OpenApiResponse(OpenApiTypes.OBJECT, description="Missing permission.")
CONFLICT = OpenApiResponse(OpenApiTypes.OBJECT, description="The firing request is wrong (message says why).")
