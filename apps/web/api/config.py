"""The whole configuration (GET /api/v1/config): what export_config writes,
what another instance's sync_config pulls. Needs ``control.view_config``."""
from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from apps.configsync.document import FORMATS, dump, export_document
from apps.configsync.sections import ConfigError
from apps.web.access import CanViewConfig

from .schema import BAD_PARAMETER, FORBIDDEN

DOCUMENT = "The configuration document: pyscaler_config (the format's version), selection, clusters."
CONTENT_TYPES = {"json": "application/json", "yaml": "application/yaml; charset=utf-8"}


class ConfigView(APIView):
    permission_classes = [CanViewConfig]

    def perform_content_negotiation(self, request, force=False):
        """``format`` chooses the document's format here, not a DRF renderer
        (DRF would answer 404 to format=yaml); errors are JSON."""
        renderer = JSONRenderer()
        return renderer, renderer.media_type

    @extend_schema(
        operation_id="config_export",
        summary="The configuration as code (clusters, nodes, counters, JVMs, actions, triggers), by name",
        description="The document `manage.py export_config` writes and `import_config`/`sync_config` read "
                    "(README: Configuration as code). Nodes PyScaler launched are left out; secrets appear "
                    "only as references (env:/file:). Needs the permission control.view_config.",
        parameters=[
            OpenApiParameter("cluster", str, many=True, description="Only these clusters (repeatable)."),
            OpenApiParameter("format", str, enum=list(FORMATS), description="json (default) or yaml."),
        ],
        responses={(200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT, description=DOCUMENT),
                   (200, "application/yaml"): OpenApiResponse(OpenApiTypes.STR, description=DOCUMENT),
                   400: BAD_PARAMETER, 403: FORBIDDEN},
    )
    def get(self, request: Request) -> HttpResponse:
        fmt = request.query_params.get("format", "json")
        if fmt not in FORMATS:
            raise ValidationError({"format": [f"{fmt!r} is not one of {', '.join(FORMATS)}"]})
        names = request.query_params.getlist("cluster") or None
        try:
            document = export_document(names)
        except ConfigError as exc:
            raise ValidationError({"cluster": [str(exc)]}) from None
        body = dump(document, fmt).encode()
        response = HttpResponse(body, content_type=CONTENT_TYPES[fmt])
        # With its length announced, a copy cut short is known as such (sync_config).
        response["Content-Length"] = str(len(body))
        return response
