"""The plan: what importing a document changes, object by object.

The document is compared with the export of the same clusters from the
database (``document.export_document``), field by field, so importing the
file just exported is an empty plan, and a plan reads as a diff of the file:

    create trigger web/high-load
    update SSH counter web/load1
        threshold: 1.5 → 2.0
    delete action web/old-mail
    plan: 1 to create, 1 to update, 1 to delete

Deletes appear only with ``prune``. Excludes (``fnmatch`` patterns over
``<cluster>``, ``<cluster>/<section>/<name>``) leave matching objects out of
the plan on both sides: never created, changed nor deleted.
"""
from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from . import sections
from .document import ALL, export_document
from .sections import CLUSTERS, Section

CREATE, UPDATE, DELETE = "create", "update", "delete"


@dataclass
class Change:
    op: str
    section: Section
    cluster: str
    key: tuple
    item: dict[str, Any] | None  # the document's object (None for a delete)
    diffs: list[tuple[str, Any, Any]] = field(default_factory=list)  # (field, old, new) of an update

    @property
    def title(self) -> str:
        return self.section.title(self.cluster, self.key)

    @property
    def semantic(self) -> bool:
        """An update changing what the object's triggers count."""
        return any(name in self.section.semantic_fields for name, _, _ in self.diffs)

    def lines(self) -> list[str]:
        head = f"{self.op} {self.title}"
        if self.op == UPDATE and self.semantic:
            head += "  (its triggers' breach counts and cooldown restart: what they count changed)"
        return [head, *(f"    {name}: {show(old)} → {show(new)}" for name, old, new in self.diffs)]


def show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value) if value == "" or value != value.strip() or "\n" in value else value
    if value is None:
        return "(empty)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass
class Plan:
    changes: list[Change]

    def count(self, op: str) -> int:
        return sum(1 for c in self.changes if c.op == op)

    @property
    def empty(self) -> bool:
        return not self.changes

    def summary(self) -> str:
        return f"plan: {self.count(CREATE)} to create, {self.count(UPDATE)} to update, {self.count(DELETE)} to delete"

    def text(self) -> str:
        return "\n".join([line for c in self.changes for line in c.lines()] + [self.summary()]) + "\n"


def excluded(path: str, excludes: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in excludes)


def without_excluded(document: dict[str, Any], excludes: Iterable[str]) -> dict[str, Any]:
    excludes = [e.strip() for e in excludes if e.strip()]
    if not excludes:
        return document
    clusters = []
    for cluster in document["clusters"]:
        if excluded(cluster["name"], excludes):
            continue
        kept = dict(cluster)
        for section in sections.all():
            kept[section.key] = [
                item for item in cluster[section.key]
                if not excluded(f"{cluster['name']}/{section.key}/{'/'.join(section.natural_key(item))}", excludes)
            ]
        clusters.append(kept)
    return {**document, "clusters": clusters}


def current_document(document: dict[str, Any], prune: bool) -> dict[str, Any]:
    """The database's side of the comparison: every cluster when the document
    is a whole export and deletes are asked for, else the document's clusters."""
    from apps.control.models import Cluster

    if prune and document["selection"] == ALL:
        return export_document()
    names = {c["name"] for c in document["clusters"]}
    if document["selection"] != ALL:
        names |= set(document["selection"])
    return export_document(sorted(Cluster.objects.filter(name__in=names).values_list("name", flat=True)))


def make_plan(document: dict[str, Any], *, prune: bool = False, excludes: Iterable[str] = ()) -> Plan:
    """The changes importing ``document`` (already normalized) makes."""
    excludes = list(excludes)
    incoming = without_excluded(document, excludes)
    current = without_excluded(current_document(document, prune), excludes)
    theirs = {c["name"]: c for c in incoming["clusters"]}
    ours = {c["name"]: c for c in current["clusters"]}
    changes: list[Change] = []
    for name in sorted(set(theirs) | set(ours)):
        changes += _cluster_changes(name, ours.get(name), theirs.get(name), prune)
    return Plan(changes)


def _cluster_changes(name: str, ours: dict | None, theirs: dict | None, prune: bool) -> list[Change]:
    changes = _item_changes(CLUSTERS, name, {(name,): _own(ours)} if ours else {},
                            {(name,): _own(theirs)} if theirs else {}, prune)
    for section in sections.all():
        old = {section.natural_key(i): i for i in (ours or {}).get(section.key, [])}
        new = {section.natural_key(i): i for i in (theirs or {}).get(section.key, [])}
        changes += _item_changes(section, name, old, new, prune)
    return changes


def _own(cluster: dict[str, Any]) -> dict[str, Any]:
    return {k: cluster[k] for k in CLUSTERS.all_fields}


def _item_changes(section: Section, cluster: str, old: dict, new: dict, prune: bool) -> list[Change]:
    changes = []
    for key in sorted(set(old) | set(new)):
        if key not in old:
            changes.append(Change(CREATE, section, cluster, key, new[key]))
        elif key not in new:
            if prune:
                changes.append(Change(DELETE, section, cluster, key, None))
        else:
            diffs = [(f, old[key][f], new[key][f]) for f in section.all_fields if old[key][f] != new[key][f]]
            if diffs:
                changes.append(Change(UPDATE, section, cluster, key, new[key], diffs))
    return changes
