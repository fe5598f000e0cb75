"""Pure-logic units of the configuration: MBean names, secret references,
comparisons."""
import pytest

from apps.monitoring.choices import breaches
from apps.monitoring.jmx.objectname import ObjectNameError, parse_object_name
from pyscaler.secretrefs import SecretUnavailable, resolve_secret_ref


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


def test_secret_refs_resolve_from_env_and_file(tmp_path, monkeypatch):
    monkeypatch.setenv("PYSCALER_TEST_SECRET", "s3cret")
    assert resolve_secret_ref("env:PYSCALER_TEST_SECRET") == "s3cret"
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    assert resolve_secret_ref(f"file:{secret}") == "from-file"
    with pytest.raises(SecretUnavailable, match="PYSCALER_NOT_SET_ANYWHERE is not set"):
        resolve_secret_ref("env:PYSCALER_NOT_SET_ANYWHERE")
    with pytest.raises(SecretUnavailable, match="cannot read"):
        resolve_secret_ref(f"file:{tmp_path / 'missing'}")


@pytest.mark.parametrize("value, comparison, threshold, expected", [
    (5, ">=", 5, True), (5, ">", 5, False), (4.9, "<", 5, True), (5, "<=", 5, True), (5.1, "<=", 5, False),
])
def test_comparisons(value, comparison, threshold, expected):
    assert breaches(value, comparison, threshold) is expected
