"""The harness's own RabbitMQ node is a real broker apart from the shared one:
it serves AMQP on its own port, stop() really takes it away and start()
brings it back with its durable queues and their messages."""
from __future__ import annotations

import kombu
import pytest

from devservers.rabbitmq import RabbitMQNode
from devservers.util import port_open

pytestmark = pytest.mark.slow


def _publish(url: str, body: str) -> None:
    with kombu.Connection(url, connect_timeout=5) as conn:
        queue = kombu.Queue("harness-durable", durable=True)
        channel = conn.channel()
        queue(channel).declare()
        conn.Producer(channel).publish(body, routing_key="harness-durable", delivery_mode=2)


def _get(url: str) -> str | None:
    with kombu.Connection(url, connect_timeout=5) as conn:
        message = kombu.Queue("harness-durable", durable=True)(conn.channel()).get(no_ack=True)
        return None if message is None else message.body.decode() if isinstance(message.body, bytes) \
            else message.body


def test_a_stopped_and_restarted_node_keeps_its_durable_messages(rabbitmq_node: RabbitMQNode) -> None:
    assert rabbitmq_node.port != 5672 and rabbitmq_node.nodename.startswith("pyscaler-test-")
    _publish(rabbitmq_node.url, "kept")

    rabbitmq_node.stop()
    assert not rabbitmq_node.running and not port_open("127.0.0.1", rabbitmq_node.port)
    with pytest.raises(Exception):
        kombu.Connection(rabbitmq_node.url, connect_timeout=1).ensure_connection(max_retries=1)

    rabbitmq_node.start()
    assert rabbitmq_node.running and port_open("127.0.0.1", rabbitmq_node.port)
    assert _get(rabbitmq_node.url) == "kept"
    assert _get(rabbitmq_node.url) is None


def test_rabbitmqctl_reaches_only_this_node(rabbitmq_node: RabbitMQNode) -> None:
    """The cookie is private (HOME in the node's directory) and the node name
    is its own: vhosts made here do not appear on the shared broker."""
    rabbitmq_node.ctl("add_vhost", "harness-only")
    assert "harness-only" in rabbitmq_node.ctl("list_vhosts", "name").split()
    assert (rabbitmq_node.base_dir / "home" / ".erlang.cookie").exists()


def test_a_node_left_by_a_dead_session_is_swept(rabbitmq_node: RabbitMQNode) -> None:
    """A session killed by a timeout cannot clean up; the next one does."""
    import subprocess

    from devservers.rabbitmq import sweep_stale

    dead = subprocess.Popen(["true"])
    dead.wait()
    (rabbitmq_node.base_dir / "owner.pid").write_text(str(dead.pid))
    assert rabbitmq_node.base_dir in sweep_stale()
    rabbitmq_node._proc.wait(timeout=10)
    assert not rabbitmq_node.base_dir.exists() and not port_open("127.0.0.1", rabbitmq_node.port)
