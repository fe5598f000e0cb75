"""The shape rules of the architecture (issue 10), checked on every run so a
later change cannot quietly undo them: small functions and modules, control
never naming an action kind, counter-source names only in their own packages.
The import rules themselves are import-linter contracts (.importlinter), run by
`make test` before pytest."""
import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
APPS = REPO / "apps"
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 450


def _sources(root: Path):
    for path in sorted(root.rglob("*.py")):
        if "migrations" not in path.parts:
            yield path, path.read_text()


def test_no_function_or_module_in_apps_is_too_long():
    too_long = []
    for path, text in _sources(APPS):
        name = path.relative_to(REPO)
        if text.count("\n") > MAX_MODULE_LINES:
            too_long.append(f"{name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{name}:{node.lineno} {node.name}() {length} lines")
    assert not too_long, "over the limits (functions 60 lines, modules 450):\n" + "\n".join(too_long)


def _code_strings(tree: ast.AST):
    """String constants that are code, not documentation: docstrings and
    help_text/verbose_name keyword values are left out."""
    docs = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docs.add(id(body[0].value))
        if isinstance(node, ast.keyword) and node.arg in {"help_text", "verbose_name", "verbose_name_plural"}:
            for sub in ast.walk(node.value):
                docs.add(id(sub))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            yield node


def _kind_names():
    from apps.actions import registry

    names = set()
    for value, kind in registry.all_kinds().items():
        if kind.__module__.startswith("apps.actions.kinds."):  # not the test-only kinds
            names.update({kind.__name__, str(value), kind.label})
    assert len(names) >= 12, names
    return names


@pytest.mark.django_db(databases=[])
def test_control_names_no_action_kind():
    kinds = _kind_names()
    found = []
    for path, text in _sources(APPS / "control"):
        tree = ast.parse(text)
        for node in _code_strings(tree):
            if node.value in kinds:
                found.append(f"{path.relative_to(REPO)}:{node.lineno} {node.value!r}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id in kinds:
                found.append(f"{path.relative_to(REPO)}:{node.lineno} {node.id}")
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id == "ActionKindChoice":
                found.append(f"{path.relative_to(REPO)}:{node.lineno} ActionKindChoice.{node.attr}")
    assert not found, "apps/control names action kinds:\n" + "\n".join(found)


def test_source_names_appear_only_in_their_own_packages():
    own = {APPS / "monitoring" / "ssh", APPS / "monitoring" / "jmx"}
    found = []
    for path, text in _sources(APPS):
        if any(parent in own for parent in path.parents):
            continue
        for node in _code_strings(ast.parse(text)):
            if re.fullmatch(r"ssh|jmx", node.value, re.IGNORECASE):
                found.append(f"{path.relative_to(REPO)}:{node.lineno} {node.value!r}")
    assert not found, "counter-source names outside their packages:\n" + "\n".join(found)
