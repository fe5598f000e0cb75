"""The database `make test` runs the dbbackends tests on is the one
DATABASE_URL names (SQLite, PostgreSQL, MariaDB), Django's checks of that
connection pass, and on PostgreSQL and MariaDB a row lock really excludes a
second transaction (what the one-firing and cluster-bounds locks rely on)."""
import os
import threading
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import Group
from django.core import checks
from django.db import DatabaseError, connection, connections, transaction

pytestmark = pytest.mark.dbbackends

VENDOR_OF_SCHEME = {"sqlite": "sqlite", "postgres": "postgresql", "postgresql": "postgresql",
                    "pgsql": "postgresql", "mysql": "mysql", "mariadb": "mysql"}


@pytest.mark.django_db
def test_the_tests_run_on_the_database_database_url_names():
    scheme = urlsplit(os.environ.get("DATABASE_URL", "sqlite://")).scheme
    assert connection.vendor == VENDOR_OF_SCHEME[scheme]
    # pytest-django's test database, never the configured one: test_<name> on a
    # server, test.sqlite3 in a temporary directory for SQLite.
    assert os.path.basename(str(connection.settings_dict["NAME"])).startswith("test")
    with connection.cursor() as cursor:  # migrations applied: a project table answers
        cursor.execute("SELECT COUNT(*) FROM control_cluster")
        assert cursor.fetchone() == (0,)


@pytest.mark.django_db
def test_django_checks_the_connection_without_warnings():
    """E.g. MariaDB without strict mode (mysql.W002) would be reported here."""
    problems = checks.run_checks(databases=["default"], include_deployment_checks=False)
    problems = [p for p in problems if p.level >= checks.WARNING]
    assert problems == []


@pytest.mark.serverdb  # SQLite locks the whole database per write transaction instead
@pytest.mark.django_db(transaction=True)
def test_a_row_lock_excludes_a_second_transaction():
    assert connection.features.has_select_for_update
    group = Group.objects.create(name="locked")
    locked = threading.Event()
    release = threading.Event()

    def hold_lock() -> None:
        try:
            with transaction.atomic():
                Group.objects.select_for_update().get(pk=group.pk)
                locked.set()
                release.wait(10)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(10)
        with pytest.raises(DatabaseError):
            with transaction.atomic():
                Group.objects.select_for_update(nowait=True).get(pk=group.pk)
    finally:
        release.set()
        holder.join(10)
    with transaction.atomic():  # free again once the holder committed
        assert Group.objects.select_for_update(nowait=True).get(pk=group.pk).name == "locked"
