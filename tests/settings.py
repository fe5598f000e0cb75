"""Settings of the test run: the project's settings, read after the test
environment below is in place.

pytest-django imports the settings module before any conftest runs, so the
environment must be set here, not in conftest.py. Values already in the
environment win (a worker subprocess inherits the run's temporary directory).
"""
import os
import tempfile

_defaults = {
    # Tests never look for the instance-metadata address and never use real
    # AWS credentials.
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "SECRET_KEY": "tests-only-secret-key-not-for-production-use-0123456789",
    # What the dispatcher signs collect messages with; worker subprocesses
    # inherit it from this environment.
    "COLLECT_SIGNING_KEY": "tests-only-collect-signing-key-0123456789",
    # In-process collection in tests must not publish history tasks to the
    # machine's broker; the history tests switch the feed on for their workers.
    "HISTORY_ENABLED": "false",
}
for _name, _value in _defaults.items():
    os.environ.setdefault(_name, _value)
if "PYSCALER_VAR_DIR" not in os.environ:
    # Nothing is written into the checkout's var/ (make run's).
    os.environ["PYSCALER_VAR_DIR"] = tempfile.mkdtemp(prefix="pyscaler-tests-")
# Never the checkout's collected static files: tests use the finders.
os.environ.setdefault("STATIC_ROOT", os.path.join(os.environ["PYSCALER_VAR_DIR"], "static"))

from pyscaler.settings import *  # noqa: E402,F401,F403

# Users are created by many tests; a slow hasher only costs time there.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The test-only third counter source (tests/monitoring/constant): its
# registration, the one place that names it.
INSTALLED_APPS = [*INSTALLED_APPS, "tests.monitoring.constant"]  # noqa: F405
