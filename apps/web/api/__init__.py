"""The monitoring half of the data API (/api/v1/): counter series."""
