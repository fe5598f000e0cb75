"""The configuration document: building it from the database, writing it as
YAML or JSON with a stable order (two exports of the same configuration are
the same bytes), reading and checking one.

Layout::

    pyscaler_config: 1          # the format's version
    selection: all              # or the list of clusters exported
    clusters:
    - name: web
      ...cluster fields...
      nodes: [...]              # one list per section (sections.py), by natural key
      ssh_counters: [...]
"""
from __future__ import annotations

import json
from typing import Any

import yaml

from . import sections
from .sections import CLUSTERS, ConfigError

FORMAT_VERSION = 1
FORMATS = ("yaml", "json")
ALL = "all"


def export_document(cluster_names: list[str] | None = None) -> dict[str, Any]:
    """The configuration of the named clusters (None: every cluster)."""
    from apps.control.models import Cluster

    clusters = Cluster.objects.order_by("name")
    if cluster_names is not None:
        names = sorted(set(cluster_names))
        clusters = clusters.filter(name__in=names)
        unknown = sorted(set(names) - {c.name for c in clusters})
        if unknown:
            raise ConfigError(f"no cluster named {unknown[0]!r}")
    out = []
    for cluster in clusters:
        item = CLUSTERS.export(cluster)
        for section in sections.all():
            item[section.key] = section.export_all(cluster)
        out.append(item)
    selection: Any = ALL if cluster_names is None else sorted(set(cluster_names))
    return {"pyscaler_config": FORMAT_VERSION, "selection": selection, "clusters": out}


class _Dumper(yaml.SafeDumper):
    """Block style; lists indented under their key, as people write them."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


def dump(document: dict[str, Any], fmt: str = "yaml") -> str:
    if fmt == "json":
        return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    if fmt == "yaml":
        return yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                         default_flow_style=False, width=100)
    raise ConfigError(f"unknown format {fmt!r} (use {' or '.join(FORMATS)})")


def load(text: str | bytes) -> dict[str, Any]:
    """Parse a YAML or JSON document (JSON is YAML) and check its shape:
    every object with every field, in file order (``normalize``)."""
    if isinstance(text, bytes):
        try:
            text = text.decode()
        except UnicodeDecodeError as exc:
            raise ConfigError(f"not UTF-8 text: {exc}") from None
    try:
        # JSON read as JSON: YAML 1.1 would read 1e+18 as a string.
        return normalize(json.loads(text))
    except ValueError:
        pass
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"not a YAML or JSON document: {exc}") from None
    return normalize(raw)


def normalize(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict) or raw.get("pyscaler_config") != FORMAT_VERSION:
        raise ConfigError(f"not a PyScaler configuration: the document must be a mapping with "
                          f"pyscaler_config: {FORMAT_VERSION}")
    unknown = sorted(set(raw) - {"pyscaler_config", "selection", "clusters"})
    if unknown:
        raise ConfigError(f"unknown top-level key {unknown[0]!r}")
    selection = raw.get("selection", ALL)
    if selection != ALL and not (isinstance(selection, list) and all(isinstance(n, str) for n in selection)):
        raise ConfigError(f"selection: '{ALL}' or a list of cluster names, not {selection!r}")
    clusters = raw.get("clusters") or []
    if not isinstance(clusters, list):
        raise ConfigError("clusters: a list of clusters")
    seen: set[str] = set()
    out = []
    for cluster in clusters:
        item = _normalize_cluster(cluster)
        if item["name"] in seen:
            raise ConfigError(f"cluster {item['name']}: the name appears twice in the file")
        seen.add(item["name"])
        out.append(item)
    selection = ALL if selection == ALL else sorted(set(selection))
    return {"pyscaler_config": FORMAT_VERSION, "selection": selection,
            "clusters": sorted(out, key=lambda c: c["name"])}


def _normalize_cluster(raw: Any) -> dict[str, Any]:
    keys = [s.key for s in sections.all()]
    if not isinstance(raw, dict):
        raise ConfigError(f"each entry of clusters must be a mapping, not {raw!r}")
    own = {k: v for k, v in raw.items() if k not in keys}
    item = CLUSTERS.normalize(str(raw.get("name", "")), own)
    name = item["name"] = str(item["name"])
    for section in sections.all():
        entries = raw.get(section.key) or []
        if not isinstance(entries, list):
            raise ConfigError(f"cluster {name}, {section.key}: a list, not {entries!r}")
        normal = [section.normalize(name, entry) for entry in entries]
        keys_seen: set[tuple] = set()
        for entry in normal:
            key = section.natural_key(entry)
            if key in keys_seen:
                raise ConfigError(f"{section.title(name, key)}: the name appears twice in cluster {name}")
            keys_seen.add(key)
        item[section.key] = sorted(normal, key=section.natural_key)
    return item
