"""Pulling a remote instance's configuration into this one, recorded.

The remote's answer is fetched whole, parsed and checked before anything is
written; the plan is then applied in one transaction. A remote that is down,
answers garbage, breaks off or times out changes nothing; every attempt is
a SyncRecord (who, when, from where, the plan or the error)."""
from __future__ import annotations

from dataclasses import dataclass

from .importing import import_text
from .models import RemoteInstance, SyncRecord
from .plan import Plan
from .remote import RemoteError, config_url, fetch
from .sections import ConfigError


@dataclass
class SyncResult:
    record: SyncRecord
    plan: Plan | None

    @property
    def ok(self) -> bool:
        return self.record.ok


def sync(remote: RemoteInstance, *, dry_run: bool = False, user=None, by: str = "",
         expect: str | None = None) -> SyncResult:
    """Fetch, plan and apply (``expect``: the digest of the plan shown before; see import_text)."""
    record = SyncRecord(remote=remote, remote_name=remote.name, user=user, dry_run=dry_run,
                        by=by or (f"user {user.get_username()}" if user else "unknown"),
                        url=config_url(remote.base_url, remote.cluster_list))
    plan = None
    try:
        body = fetch(remote)
        plan = import_text(body, prune=remote.prune, dry_run=dry_run, excludes=remote.exclude_list,
                           expect=expect)
    except RemoteError as exc:
        record.error = str(exc)
    except ConfigError as exc:
        record.error = f"nothing changed: {exc}"
    else:
        record.ok = True
        record.plan = plan.text()
    record.save()
    return SyncResult(record, plan)
