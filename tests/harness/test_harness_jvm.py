"""The JVM harness is a real JVM with Java's own JMX remote agent: Python reads
it through JMX (jpype) after changing a value over the process's stdin."""
from __future__ import annotations

import pytest

from apps.monitoring.jmx.connector import Endpoint, JmxAuthError, JmxConnection
from devservers.jvm import DEMO_MBEAN, JmxJvm
from devservers.util import ServerError


def test_it_serves_jmx_across_the_process_boundary(jmx_jvm: JmxJvm) -> None:
    jmx_jvm.set("Value", 7.5)
    connection = JmxConnection.open(Endpoint("127.0.0.1", jmx_jvm.port))
    try:
        memory = connection.get_attributes("java.lang:type=Memory", ("HeapMemoryUsage",))
        assert int(memory["HeapMemoryUsage"].get("used")) > 0
        demo = connection.get_attributes(DEMO_MBEAN, ("Value", "Healthy", "Pool"))
        assert float(demo["Value"]) == 7.5
        assert bool(demo["Healthy"]) is True
        assert int(demo["Pool"].get("max")) == 10
    finally:
        connection.close()


def test_it_requires_the_password_it_was_given(make_jvm) -> None:
    jvm = make_jvm(credentials=("monitor", "s3cret-pw"))
    with pytest.raises(JmxAuthError):
        JmxConnection.open(Endpoint("127.0.0.1", jvm.port))
    connection = JmxConnection.open(Endpoint("127.0.0.1", jvm.port, "monitor", "s3cret-pw"))
    try:
        assert "Value" in connection.get_attributes(DEMO_MBEAN, ("Value",))
    finally:
        connection.close()


def test_it_answers_commands_and_refuses_unknown_ones(jmx_jvm: JmxJvm) -> None:
    jmx_jvm.set("Requests", 41)
    assert jmx_jvm.get("Requests") == "41"
    with pytest.raises(ServerError, match="unknown attribute"):
        jmx_jvm.set("Nope", 1)


def test_a_failing_start_says_why(tmp_path, jmx_jvm: JmxJvm) -> None:
    clash = JmxJvm(port=jmx_jvm.port, workdir=tmp_path)  # the port is taken
    with pytest.raises(ServerError, match="failed to start") as info:
        clash.start(timeout=20)
    assert "stderr tail" in str(info.value)
    assert not clash.running
