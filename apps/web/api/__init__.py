"""The data API, all of /api/v1/ (routes in urls.py, OpenAPI description at
/api/v1/openapi.json): counter series, cluster and trigger status,
executions, firing and node collection. One module per resource."""
