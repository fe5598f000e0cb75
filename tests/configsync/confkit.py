"""Helpers of the configuration-as-code tests: the database's configuration
as a document to edit, and import_config run as a user runs it."""
from __future__ import annotations

import io
from pathlib import Path

import yaml
from django.core.management import call_command

from apps.configsync.document import dump, export_document


def current() -> dict:
    """The database's configuration, as a document to edit."""
    return yaml.safe_load(dump(export_document()))


def cluster_of(document: dict, name: str = "web") -> dict:
    return next(c for c in document["clusters"] if c["name"] == name)


def item(cluster: dict, section: str, name: str) -> dict:
    return next(i for i in cluster[section] if i["name"] == name)


def run_import(tmp_path: Path, document: dict | str, *args: str) -> str:
    """import_config FILE [args]: its output (CommandError propagates)."""
    path = tmp_path / "config.yaml"
    path.write_text(document if isinstance(document, str) else dump(document))
    out = io.StringIO()
    call_command("import_config", str(path), *args, stdout=out)
    return out.getvalue()
