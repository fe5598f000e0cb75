"""The section registry: one ``Section`` per kind of configuration object.

A configuration file holds a list of clusters; inside each cluster, one list
per section (``nodes``, ``ssh_counters``, ``jvms``, ``jmx_counters``,
``actions``, ``triggers``), each object named by its natural key (its name
within the cluster; a JMX counter's JVM and name), never by a database id.

Export, the plan and the import go through this registry and never name a
model, so a new kind of configuration (scaling policies) is one ``Section``
subclass and one ``register()`` call. Registration order is dependency
order: an object may refer only to objects of earlier sections (a JMX
counter to its JVM, a trigger to counters and actions); creates and updates
run in this order, deletes in the reverse one.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from django.apps import apps as django_apps
from django.core.exceptions import ValidationError
from django.db import models


class ConfigError(Exception):
    """A configuration refused. The message names the object and the field."""


def plain(value: Any) -> Any:
    """A field's value as the file holds it: JSON objects with sorted keys
    (PostgreSQL's jsonb reorders them; the file must not change with it)."""
    if isinstance(value, dict):
        return {str(k): plain(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def error_text(exc: ValidationError) -> str:
    """A ValidationError as ``field: message; field: message``."""
    if hasattr(exc, "error_dict"):
        parts = []
        for field, errors in exc.message_dict.items():
            label = "" if field == "__all__" else f"field {field}: "
            parts.append(label + " ".join(errors))
        return "; ".join(parts)
    return " ".join(exc.messages)


class Section:
    """One kind of object of a cluster. Subclasses set the class attributes;
    the defaults suit a model with a ``cluster`` foreign key and a ``name``."""

    #: The list's key inside a cluster in the file ("ssh_counters").
    key: ClassVar[str]
    #: What one object is called in plans and messages ("SSH counter").
    label: ClassVar[str]
    #: ``app_label.ModelName``.
    model_label: ClassVar[str]
    #: The fields naming an object within its cluster, first in the file.
    key_fields: ClassVar[tuple[str, ...]] = ("name",)
    #: Plain fields, in file order (after the key fields).
    fields: ClassVar[tuple[str, ...]] = ()
    #: Foreign keys to objects of an earlier section of the same cluster, by
    #: name: field -> that section's key ({"jvm": "jvms"}).
    refs: ClassVar[dict[str, str]] = {}
    #: The object's foreign key to its cluster (None: it reaches the cluster
    #: through a reference, as a JMX counter through its JVM).
    cluster_field: ClassVar[str | None] = "cluster"
    #: Fields whose change changes what the triggers using the object count
    #: (a counter's threshold): their counting restarts.
    semantic_fields: ClassVar[tuple[str, ...]] = ()
    #: The counter-source kind whose counters this section holds (triggers
    #: name them under ``counters: {kind: [...]}``), or None.
    counter_kind: ClassVar[str | None] = None

    @property
    def model(self) -> type[models.Model]:
        return django_apps.get_model(self.model_label)

    @property
    def all_fields(self) -> tuple[str, ...]:
        return (*self.key_fields, *self.fields)

    # -- reading ---------------------------------------------------------------
    def rows(self, cluster) -> models.QuerySet:
        """The cluster's objects that are configuration (not runtime state)."""
        return self.model.objects.filter(cluster=cluster)

    def export(self, obj) -> dict[str, Any]:
        item = {}
        for name in self.all_fields:
            if name in self.refs:
                item[name] = getattr(obj, name).name
            else:
                item[name] = plain(getattr(obj, name))
        return item

    def export_all(self, cluster) -> list[dict[str, Any]]:
        items = [self.export(obj) for obj in self.rows(cluster)]
        return sorted(items, key=self.natural_key)

    def natural_key(self, item: dict[str, Any]) -> tuple:
        return tuple(str(item[name]) for name in self.key_fields)

    def title(self, cluster_name: str, key: tuple) -> str:
        return f"{self.label} {cluster_name}/{'/'.join(key)}"

    def lookup(self, cluster, key: tuple):
        """The stored object of ``cluster`` with this natural key, or None."""
        filters = {}
        for name, value in zip(self.key_fields, key):
            filters[f"{name}__name" if name in self.refs else name] = value
        return self.rows(cluster).filter(**filters).first()

    # -- the file ---------------------------------------------------------------
    def defaults(self) -> dict[str, Any]:
        """What a field left out of the file means: the model's default."""
        out = {}
        for name in self.fields:
            if name not in self.refs:
                out[name] = plain(self.model._meta.get_field(name).get_default())
        return out

    def normalize(self, cluster_name: str, item: Any) -> dict[str, Any]:
        """An object of the file with every field, in file order; unknown
        fields and missing key fields refused, naming the object."""
        where = f"{self.label} in cluster {cluster_name}" if cluster_name else f"a {self.label}"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: each entry of {self.key} must be a mapping, not {item!r}")
        missing = [name for name in self.key_fields if item.get(name) in (None, "")]
        if missing:
            raise ConfigError(f"{where}: field {missing[0]} is required ({item!r})")
        where = self.title(cluster_name, self.natural_key(item))
        unknown = sorted(set(item) - set(self.all_fields))
        if unknown:
            raise ConfigError(f"{where}: unknown field {unknown[0]!r} (known: {', '.join(self.all_fields)})")
        full = {**self.defaults(), **item, **{name: str(item[name]) for name in self.key_fields}}
        return {name: self._coerce(name, plain(full.get(name))) for name in self.all_fields}

    def _coerce(self, name: str, value: Any) -> Any:
        """YAML 1.1 reads ``1e+18`` (no dot) as a string: such a float is
        read here as the number it is, so the plan compares numbers."""
        if isinstance(value, str) and name not in self.refs:
            field = self.model._meta.get_field(name)
            if isinstance(field, models.FloatField):
                try:
                    return float(value)
                except ValueError:
                    return value  # validation names the field
        return value

    # -- writing ------------------------------------------------------------------
    def resolve(self, cluster, name: str, value: Any, where: str):
        """The object a reference field names, or a refusal naming it."""
        section = get(self.refs[name])
        target = section.lookup(cluster, (str(value),)) if value not in (None, "") else None
        if target is None:
            raise ConfigError(f"{where}, field {name}: unknown {section.label} {value!r} in cluster {cluster.name}")
        return target

    def write(self, cluster, obj, item: dict[str, Any], where: str):
        """Create or update ``obj`` (None: create) from ``item``, validated as
        admin validates it (the model's full_clean), and return it."""
        if obj is None:
            obj = self.model(**({self.cluster_field: cluster} if self.cluster_field else {}))
        for name in self.all_fields:
            value = item[name]
            setattr(obj, name, self.resolve(cluster, name, value, where) if name in self.refs else value)
        self.validate(obj, where)
        obj.save()
        return obj

    def validate(self, obj, where: str) -> None:
        try:
            obj.full_clean()
        except ValidationError as exc:
            raise ConfigError(f"{where}: {error_text(exc)}") from None

    def triggers_of(self, obj) -> Iterable[int]:
        """Ids of the triggers counting this object (counter sections)."""
        return ()


class ClusterSection(Section):
    """The root: clusters, by name. Their objects' sections sit inside them."""

    key = "clusters"
    label = "cluster"
    model_label = "control.Cluster"
    fields = ("description", "min_size", "max_size", "max_step_size",
              "ssh_user", "ssh_port", "ssh_key_path", "ssh_password_ref",
              "ec2_region", "ec2_ami", "ec2_instance_type", "ec2_subnet_id", "ec2_security_group_ids",
              "ec2_key_name", "ec2_tags", "target_group_arn", "classic_elb_name")

    def rows(self, cluster=None) -> models.QuerySet:
        return self.model.objects.all()

    def title(self, cluster_name: str, key: tuple = ()) -> str:
        return f"cluster {cluster_name}"

    def write(self, cluster, obj, item, where):
        if obj is None:
            obj = self.model()
        for name in self.all_fields:
            setattr(obj, name, item[name])
        self.validate(obj, where)
        obj.save()
        return obj


_registry: dict[str, Section] = {}
CLUSTERS = ClusterSection()


def register(section: Section) -> Section:
    """Add a section after the ones registered so far (dependency order)."""
    if section.key in _registry or section.key == CLUSTERS.key:
        raise ValueError(f"a configuration section {section.key!r} is already registered")
    _registry[section.key] = section
    return section


def get(key: str) -> Section:
    return _registry[key]


def all() -> list[Section]:
    """The sections inside a cluster, in dependency order."""
    return list(_registry.values())


def counter_sections() -> list[Section]:
    return [s for s in _registry.values() if s.counter_kind]


def register_builtin() -> None:
    """The sections of PyScaler's own models (AppConfig.ready)."""
    from . import builtin

    if not _registry:
        for section in builtin.SECTIONS:
            register(section)
