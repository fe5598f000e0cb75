"""Root conftest: the real-server fixtures.

Server fixtures live in tests/fixtures/<server>.py, one module per server,
registered here as plugins so every test directory can use them.
"""
# The test environment (temporary var dir, dummy AWS credentials, no
# instance-metadata lookups) is set in tests/settings.py, which pytest-django
# imports before this file.

pytest_plugins = [
    "tests.fixtures.base",
    "tests.fixtures.sshd",
    "tests.fixtures.jvm",
    "tests.fixtures.memcached",
    "tests.fixtures.moto",
    "tests.fixtures.smtp",
    "tests.fixtures.webhook",
    "tests.fixtures.celery_worker",
    "tests.fixtures.console",
    "tests.fixtures.rabbitmq",
    "tests.fixtures.postgres",
]


def pytest_collection_modifyitems(config, items):
    """Tests marked ``serverdb`` check what only PostgreSQL and MariaDB have
    (row locks): on SQLite they are deselected, not passed vacuously, so a
    green result always means the check ran. `make test` runs them in its
    PostgreSQL and MariaDB passes."""
    from django.db import connection

    def runs_here(item) -> bool:
        if connection.vendor == "sqlite" and item.get_closest_marker("serverdb") is not None:
            return False
        # ``postgresql``: only PostgreSQL can store it at all (NaN in a float column).
        return connection.vendor == "postgresql" or item.get_closest_marker("postgresql") is None

    kept = [item for item in items if runs_here(item)]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept
