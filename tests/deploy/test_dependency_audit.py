"""scripts/audit_dependencies.py's reading of pip-audit's JSON report (the
run itself needs the advisory database and happens in `make test`, outside
pytest's loopback-only network guard): a known vulnerability fails the run and
names the package, the advisory and the fix; an unreachable database passes
but says that nothing was audited, never "no known vulnerabilities"."""
from __future__ import annotations

import importlib.util
import sys

from devservers.util import REPO_ROOT

_spec = importlib.util.spec_from_file_location("audit_dependencies", REPO_ROOT / "scripts" / "audit_dependencies.py")
audit_dependencies = importlib.util.module_from_spec(_spec)
sys.modules["audit_dependencies"] = audit_dependencies  # dataclasses look their module up there
_spec.loader.exec_module(audit_dependencies)
classify = audit_dependencies.classify


def test_a_known_vulnerability_fails_naming_package_advisory_and_fix():
    audit = classify({"dependencies": [
        {"name": "django", "version": "5.2.19", "vulns": []},
        {"name": "requests", "version": "2.19.0", "vulns": [
            {"id": "PYSEC-2018-28", "fix_versions": ["2.20.0"], "aliases": ["CVE-2018-18074"],
             "description": "..."}]},
    ]})
    assert audit.exit_code == 1
    assert audit.vulnerable == ["requests 2.19.0: PYSEC-2018-28 (CVE-2018-18074); fixed in 2.20.0"]
    assert "known vulnerabilities in the pinned set" in audit.report()


def test_an_unreachable_database_passes_but_says_nothing_was_audited():
    audit = classify({"dependencies": [
        {"name": "django", "skip_reason": "Dependency not found on PyPI and could not be audited: django (5.2.19)"},
        {"name": "celery", "skip_reason": "Dependency not found on PyPI and could not be audited: celery (5.7.0)"},
    ]})
    assert audit.exit_code == 0
    assert audit.report().startswith("dependency audit: NOT AUDITED")
    assert "no known vulnerability" not in audit.report()


def test_a_clean_audit_says_how_many_packages_and_lists_the_skipped():
    audit = classify({"dependencies": [
        {"name": "django", "version": "5.2.19", "vulns": []},
        {"name": "pyscaler-local", "skip_reason": "not on PyPI"},
    ]})
    assert audit.exit_code == 0
    assert audit.report() == ("dependency audit: 1 packages, no known vulnerability\n"
                              "  not audited (1): pyscaler-local: not on PyPI")


def test_make_test_runs_the_audit_over_the_whole_pinned_set():
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "scripts/audit_dependencies.py" in makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
