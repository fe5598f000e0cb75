"""The database router of HISTORY_DATABASES: an extra history database holds
only the summary tables and their bookkeeping (batch ids, imported logs); the
configuration database holds everything, placements included. Reads and
writes name their database explicitly (``using``), so only migrations are
routed."""
from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS

#: History models that live on every history database.
ON_HISTORY_DATABASES = {"minutesummary", "hoursummary", "appliedbatch", "importedlog"}


class HistoryRouter:
    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if db == DEFAULT_DB_ALIAS:
            return None
        if app_label != "history":
            return False
        return model_name is None or model_name in ON_HISTORY_DATABASES
