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
    "tests.fixtures.celery_worker",
    "tests.fixtures.console",
]
