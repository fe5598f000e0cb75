#!/usr/bin/env python3
"""Fill in a deploy template's ${PYSCALER_*} placeholders.

    python3 deploy/render.py deploy/nginx/pyscaler.conf.template \
        PYSCALER_SERVER_NAME=pyscaler.example.com ... > /etc/nginx/sites-available/pyscaler

Values not given as NAME=value are taken from the environment. Only
${PYSCALER_*} names are touched (nginx's own $variables stay), the same
contract as the official nginx image's envsubst with
NGINX_ENVSUBST_FILTER=^PYSCALER_, so one template serves Debian, Docker and
Puppet. Standard library only: it runs before any virtualenv exists.
"""
from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping

PLACEHOLDER = re.compile(r"\$\{(PYSCALER_[A-Z0-9_]+)\}")


class RenderError(ValueError):
    pass


def placeholders(template: str) -> set[str]:
    return set(PLACEHOLDER.findall(template))


def render(template: str, values: Mapping[str, str]) -> str:
    """Replace every placeholder; a missing value or a value with a newline or
    ';' (which would inject nginx directives) is refused, naming the variable."""
    needed = placeholders(template)
    missing = sorted(needed - values.keys())
    if missing:
        raise RenderError(f"no value for {', '.join(missing)}")
    for name in needed:
        value = values[name]
        if not value or any(c in value for c in "\n;{}"):
            raise RenderError(f"{name}: {value!r} is empty or contains a newline, ';', '{{' or '}}'")
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    path, assignments = argv[0], argv[1:]
    values = {k: v for k, v in os.environ.items() if k.startswith("PYSCALER_")}
    for item in assignments:
        name, sep, value = item.partition("=")
        if not sep or not PLACEHOLDER.fullmatch(f"${{{name}}}"):
            print(f"render.py: {item!r} is not PYSCALER_NAME=value", file=sys.stderr)
            return 2
        values[name] = value
    with open(path, encoding="utf-8") as fh:
        template = fh.read()
    try:
        sys.stdout.write(render(template, values))
    except RenderError as exc:
        print(f"render.py: {path}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
