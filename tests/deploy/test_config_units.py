"""Pure-logic units of the configuration: MBean names, secret references,
comparisons."""
import pytest
from django.core.exceptions import ValidationError

from apps.monitoring.choices import breaches
from apps.monitoring.jmx.objectname import ObjectNameError, parse_object_name
from pyscaler.secretrefs import SecretUnavailable, resolve_secret_ref, validate_secret_ref


@pytest.mark.parametrize("name, domain, props", [
    ("java.lang:type=Memory", "java.lang", {"type": "Memory"}),
    ("Catalina:type=ThreadPool,name=\"http-nio-8080\"", "Catalina",
     {"type": "ThreadPool", "name": '"http-nio-8080"'}),
    ('d:k="a,b=c"', "d", {"k": '"a,b=c"'}),
])
def test_it_parses_valid_object_names(name, domain, props):
    assert parse_object_name(name) == (domain, props)


@pytest.mark.parametrize("name, reason", [
    ("java.lang", "missing ':'"),
    (":type=Memory", "domain is empty"),
    ("java.lang:", "no key properties"),
    ("java.lang:type", "has no '='"),
    ("java.lang:type=Memory,type=Other", "appears twice"),
    ("java.lang:type=*", "must be quoted"),
    ("java.*:type=Memory", "patterns"),
    ('d:k="open', "unterminated"),
])
def test_it_rejects_bad_object_names_saying_why(name, reason):
    with pytest.raises(ObjectNameError, match=reason):
        parse_object_name(name)


def test_secret_refs_resolve_from_env_and_file(tmp_path, monkeypatch, settings):
    settings.SECRET_REF_DIR = str(tmp_path)
    monkeypatch.setenv("PYSCALER_SECRET_TEST_SECRET", "s3cret")
    assert resolve_secret_ref("env:PYSCALER_SECRET_TEST_SECRET") == "s3cret"
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    assert resolve_secret_ref(f"file:{secret}") == "from-file"
    with pytest.raises(SecretUnavailable, match="PYSCALER_SECRET_NOT_SET_ANYWHERE is not set"):
        resolve_secret_ref("env:PYSCALER_SECRET_NOT_SET_ANYWHERE")
    with pytest.raises(SecretUnavailable, match="cannot read"):
        resolve_secret_ref(f"file:{tmp_path / 'missing'}")


@pytest.mark.parametrize("ref, reason", [
    ("env:AWS_SECRET_ACCESS_KEY", "must start with PYSCALER_SECRET_ (SECRET_REF_ENV_PREFIX)"),
    ("env:SECRET_KEY", "must start with PYSCALER_SECRET_"),
    ("file:/etc/pyscaler/pyscaler.env", "outside {dir} (SECRET_REF_DIR)"),
    ("file:{dir}/../pyscaler.env", "outside {dir}"),
    ("file:{dir}/link-out", "outside {dir}"),  # a symbolic link pointing out of the directory
    ("password123", "is not a secret reference"),
])
def test_a_secret_ref_may_name_only_the_secret_prefix_and_directory(ref, reason, tmp_path, monkeypatch, settings):
    """Otherwise whoever edits a cluster could have the worker send any of its
    variables or files as a password to a host of their choosing."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (tmp_path / "pyscaler.env").write_text("SECRET_KEY=x\n")
    (secrets / "link-out").symlink_to(tmp_path / "pyscaler.env")
    settings.SECRET_REF_DIR = str(secrets)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
    ref, reason = ref.format(dir=secrets), reason.format(dir=secrets)
    with pytest.raises(SecretUnavailable) as refused:
        resolve_secret_ref(ref)  # the worker refuses, whatever the database holds ...
    assert reason in str(refused.value) and "aws-secret" not in str(refused.value)
    with pytest.raises(ValidationError) as invalid:
        validate_secret_ref(ref)  # ... and the form never saves it
    assert reason in invalid.value.messages[0]


def test_the_secret_prefix_and_directory_are_settings(tmp_path, monkeypatch, settings):
    settings.SECRET_REF_ENV_PREFIX = "OPS_"
    settings.SECRET_REF_DIR = str(tmp_path)
    monkeypatch.setenv("OPS_JMX", "pw")
    (tmp_path / "ssh").write_text("pw2\n")
    assert resolve_secret_ref("env:OPS_JMX") == "pw"
    assert resolve_secret_ref(f"file:{tmp_path / 'ssh'}") == "pw2"
    validate_secret_ref("env:OPS_JMX")


@pytest.mark.parametrize("value, comparison, threshold, expected", [
    (5, ">=", 5, True), (5, ">", 5, False), (4.9, "<", 5, True), (5, "<=", 5, True), (5.1, "<=", 5, False),
])
def test_comparisons(value, comparison, threshold, expected):
    assert breaches(value, comparison, threshold) is expected
