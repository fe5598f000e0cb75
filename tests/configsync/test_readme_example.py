"""The README's example file is a valid configuration, and its plan example
is what an import prints."""
from __future__ import annotations

import re

from apps.configsync.importing import import_text
from devservers.util import REPO_ROOT


def readme_section() -> str:
    text = (REPO_ROOT / "README.md").read_text()
    return text.split("## Configuration as code", 1)[1].split("\n## ", 1)[0]


def test_the_readme_example_imports(db):
    example = re.search(r"```yaml\n(.*?)```", readme_section(), re.S).group(1)
    plan = import_text(example)
    assert plan.summary() == "plan: 7 to create, 0 to update, 0 to delete"
    assert import_text(example).empty
