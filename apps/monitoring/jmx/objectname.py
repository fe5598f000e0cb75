"""Parse JMX ObjectNames in Python, so the admin can reject a bad MBean name
without starting a JVM. Follows javax.management.ObjectName's grammar for
non-pattern names: ``domain:key=value[,key=value]*``, values plain or quoted.
Written by hand because no maintained Python package parses ObjectNames.
"""
from __future__ import annotations

_FORBIDDEN_KEY = set(':,=*?"\n')
_FORBIDDEN_PLAIN_VALUE = set(':,="*?\n')


class ObjectNameError(ValueError):
    pass


def _split_properties(text: str) -> list[str]:
    """Split on commas outside quoted values."""
    parts, current, quoted, escaped = [], [], False, False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\" and quoted:
            current.append(ch)
            escaped = True
        elif ch == '"':
            current.append(ch)
            quoted = not quoted
        elif ch == "," and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if quoted:
        raise ObjectNameError("unterminated quoted value")
    parts.append("".join(current))
    return parts


def parse_object_name(name: str) -> tuple[str, dict[str, str]]:
    """Return (domain, properties) or raise ObjectNameError saying what is wrong."""
    if not name or ":" not in name:
        raise ObjectNameError("missing ':' between domain and key properties")
    domain, _, props = name.partition(":")
    if not domain:
        raise ObjectNameError("the domain is empty")
    if any(c in domain for c in "*?"):
        raise ObjectNameError("patterns (* or ?) are not allowed: name one MBean")
    if "\n" in domain:
        raise ObjectNameError("the domain contains a newline")
    if not props:
        raise ObjectNameError("no key properties after the ':'")
    result: dict[str, str] = {}
    for prop in _split_properties(props):
        if prop == "*":
            raise ObjectNameError("patterns (* or ?) are not allowed: name one MBean")
        key, eq, value = prop.partition("=")
        if not eq:
            raise ObjectNameError(f"property {prop!r} has no '='")
        if not key or _FORBIDDEN_KEY & set(key):
            raise ObjectNameError(f"invalid key {key!r}")
        if not value:
            raise ObjectNameError(f"key {key!r} has an empty value")
        if value.startswith('"'):
            if len(value) < 2 or not value.endswith('"') or value.endswith('\\"') and not value.endswith('\\\\"'):
                raise ObjectNameError(f"badly quoted value for key {key!r}")
        elif _FORBIDDEN_PLAIN_VALUE & set(value):
            raise ObjectNameError(f"value {value!r} of key {key!r} must be quoted")
        if key in result:
            raise ObjectNameError(f"key {key!r} appears twice")
        result[key] = value
    return domain, result
