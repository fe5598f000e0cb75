"""Any valid configuration survives export → import into an empty database
→ export byte for byte, and importing the same file twice is a no-op plan."""
from __future__ import annotations

from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.configsync.document import FORMATS, dump, export_document
from apps.configsync.importing import import_text
from apps.control.models import Cluster

from .strategies import documents


def _empty() -> None:
    assert not Cluster.objects.exists()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(document=documents(), fmt=st.sampled_from(FORMATS))
def test_export_import_export_gives_the_same_bytes(db, document, fmt):
    with transaction.atomic():  # a database holding the random configuration
        _empty()
        import_text(dump(document, fmt))
        exported = dump(export_document(), fmt)
        assert import_text(exported, dry_run=True).empty
        transaction.set_rollback(True)
    with transaction.atomic():  # an empty database importing its export
        _empty()
        plan = import_text(exported)
        assert plan.count("create") > 0 and plan.count("update") == plan.count("delete") == 0
        assert dump(export_document(), fmt) == exported
        again = import_text(exported)
        assert again.empty, again.text()
        assert again.text() == "plan: 0 to create, 0 to update, 0 to delete\n"
        assert dump(export_document(), fmt) == exported
        transaction.set_rollback(True)
