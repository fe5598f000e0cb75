"""The web layer sits on top: apps.web imports control, monitoring and
actions, never the other way round, and reads trigger status from
apps.control.trigger_status, not from the evaluator's hot path."""
from __future__ import annotations

import ast
from pathlib import Path

APPS = Path(__file__).resolve().parents[2] / "apps"


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _offenders(package: str, forbidden: str) -> list[str]:
    return sorted(
        f"{path.relative_to(APPS.parent)}: {name}"
        for path in (APPS / package).rglob("*.py")
        for name in _imports(path)
        if name == forbidden or name.startswith(forbidden + ".")
    )


def test_control_monitoring_and_actions_do_not_import_the_web_layer():
    assert [o for package in ("control", "monitoring", "actions") for o in _offenders(package, "apps.web")] == []


def test_the_web_layer_does_not_import_the_evaluator():
    assert _offenders("web", "apps.control.evaluator") == []


def test_control_and_monitoring_hold_no_views_urls_or_templates():
    for package in ("control", "monitoring"):
        root = APPS / package
        assert not list(root.rglob("views.py")) and not list(root.rglob("urls.py")), package
        assert not list(root.rglob("templates")) and not list(root.rglob("static")), package
        assert not (root / "console").exists() and not (root / "api").exists(), package
