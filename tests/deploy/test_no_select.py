"""No select() in production code (issue 11): select() cannot watch a
descriptor above 1023, and a worker collecting a large fleet holds thousands.
Waits use poll() (apps/monitoring/ssh/readiness.py); the behaviour itself is
proven by tests/monitoring/test_fleet_collection.py, this catches a select()
before it ever runs."""
import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: Production code: what a worker or the web process runs.
ROOTS = ("apps", "pyscaler")


def select_calls(source: str) -> list[int]:
    """Lines using select.select (under any alias) or selectors.SelectSelector."""
    tree = ast.parse(source)
    modules = {"select"}  # names bound to the select module
    selectors = {"selectors"}
    functions = set()  # names bound to select.select itself
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "select":
                    modules.add(alias.asname or "select")
                if alias.name == "selectors":
                    selectors.add(alias.asname or "selectors")
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("select", "selectors"):
            for alias in node.names:
                if alias.name in ("select", "SelectSelector"):
                    functions.add(alias.asname or alias.name)
                    found.append(node.lineno)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if (node.value.id in modules and node.attr == "select") or \
                    (node.value.id in selectors and node.attr == "SelectSelector"):
                found.append(node.lineno)
    return sorted(found)


def test_the_check_finds_every_spelling_of_select():
    assert select_calls("import select\nselect.select([1], [], [], 1)\n") == [2]
    assert select_calls("import select as s\nr, _, _ = s.select([c], [], [])\n") == [2]
    assert select_calls("from select import select\n") == [1]
    assert select_calls("import selectors\nselectors.SelectSelector()\n") == [2]
    assert select_calls("import select\np = select.poll()\nimport selectors\nselectors.DefaultSelector()\n") == []


def test_no_production_module_uses_select():
    found = []
    for root in ROOTS:
        for path in sorted((REPO / root).rglob("*.py")):
            found += [f"{path.relative_to(REPO)}:{line}" for line in select_calls(path.read_text())]
    assert not found, ("select() cannot watch descriptors above 1023; wait with "
                       "apps.monitoring.ssh.readiness.wait_readable (poll) instead:\n" + "\n".join(found))
