#!/usr/bin/env python
"""Audit the pinned dependency set (constraints.txt: every direct and indirect
package) for known vulnerabilities with pip-audit; `make test` runs it.

Why a wrapper and not pip-audit's exit code alone: on a machine that cannot
reach the advisory database, pip-audit skips every package ("could not be
audited") and exits 0, saying "No known vulnerabilities found" — which reads
like a pass. This script says plainly that nothing was audited (and passes, so
an offline CI machine is not blocked), and fails, listing package, version,
advisory and fixed versions, whenever the database answered with a known
vulnerability.

Run:  .venv/bin/python scripts/audit_dependencies.py [requirements-file ...]
Exit: 0 no known vulnerability (or nothing could be audited), 1 vulnerable
packages found, 2 pip-audit itself failed.
"""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TIMEOUT_S = 300


@dataclass
class Audit:
    vulnerable: list[str] = field(default_factory=list)  # one line per advisory
    audited: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "name: reason"

    @property
    def exit_code(self) -> int:
        return 1 if self.vulnerable else 0

    def report(self) -> str:
        if self.vulnerable:
            return "known vulnerabilities in the pinned set:\n" + "\n".join(f"  {v}" for v in self.vulnerable)
        if not self.audited:
            return (f"dependency audit: NOT AUDITED — the advisory database was not reachable "
                    f"({len(self.skipped)} packages skipped); run `make test` or this script where it is")
        lines = [f"dependency audit: {len(self.audited)} packages, no known vulnerability"]
        if self.skipped:
            lines.append(f"  not audited ({len(self.skipped)}): " + "; ".join(self.skipped))
        return "\n".join(lines)


def classify(document: dict) -> Audit:
    """Read pip-audit's JSON report (``--format json``)."""
    audit = Audit()
    for dep in document.get("dependencies", []):
        name = f"{dep.get('name')} {dep.get('version', '')}".strip()
        if dep.get("skip_reason"):
            audit.skipped.append(f"{dep.get('name')}: {dep['skip_reason']}")
            continue
        audit.audited.append(name)
        for vuln in dep.get("vulns", []):
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed version yet"
            aliases = ", ".join(vuln.get("aliases") or [])
            audit.vulnerable.append(f"{name}: {vuln.get('id')}{f' ({aliases})' if aliases else ''}; "
                                    f"fixed in {fixed}")
    return audit


def run_pip_audit(requirement_files: list[Path]) -> dict:
    argv = [sys.executable, "-m", "pip_audit", "--no-deps", "--disable-pip", "--progress-spinner", "off",
            "--format", "json"]
    for path in requirement_files:
        argv += ["-r", str(path)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S)
    # 0: nothing found, 1: vulnerabilities found; both print the JSON report.
    if done.returncode not in (0, 1) or not done.stdout.strip():
        raise RuntimeError(f"pip-audit failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout)


def main(argv: list[str]) -> int:
    files = [Path(a) for a in argv] or [REPO / "constraints.txt"]
    try:
        audit = classify(run_pip_audit(files))
    except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
        print(f"dependency audit: {exc}", file=sys.stderr)
        return 2
    print(audit.report())
    return audit.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
