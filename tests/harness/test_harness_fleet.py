"""The fleet harness: hundreds of nodes on a few real sshd, each loopback
address a node of its own that a paramiko client verifies (one shared host
key, named per address in known_hosts) and logs in to."""
from __future__ import annotations

import socket

import paramiko
import pytest

from devservers.fleet import FLEET_MAX_STARTUPS, Fleet, node_address
from devservers.sshd import MAX_LISTEN_ADDRESSES, SshServer, listening
from devservers.util import ServerError, free_port


def _run_on(fleet: Fleet, address: str, command: str) -> str:
    client = paramiko.SSHClient()
    client.load_host_keys(str(fleet.known_hosts_path))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(address, port=fleet.port, username=fleet.user, key_filename=str(fleet.client_key_path),
                       look_for_keys=False, allow_agent=False, timeout=5, banner_timeout=5, auth_timeout=5)
        _, stdout, _ = client.exec_command(command, timeout=5)
        return stdout.read().decode().strip()
    finally:
        client.close()


def test_node_addresses_are_distinct_loopback_hosts() -> None:
    addresses = [node_address(i) for i in range(1000)]
    assert addresses[:2] == ["127.1.0.1", "127.1.0.2"] and addresses[250] == "127.1.1.1"
    assert len(set(addresses)) == 1000
    assert all(a.startswith("127.1.") and not a.endswith((".0", ".255")) for a in addresses)


def test_a_fleet_serves_every_address_from_sixteen_per_sshd(make_fleet) -> None:
    fleet = make_fleet(35)
    assert len(fleet.servers) == 3 and len(fleet.addresses) == 35
    assert [len(s.hosts) for s in fleet.servers] == [16, 16, 3]
    assert {s.port for s in fleet.servers} == {fleet.port}
    assert all(listening(address, fleet.port) for address in fleet.addresses)
    # One host key for all, named per address: one known_hosts line per sshd.
    lines = fleet.known_hosts_path.read_text().splitlines()
    assert len(lines) == 3
    assert all(line.endswith(fleet.host_public_key) for line in lines)
    assert lines[2].startswith(f"[{node_address(32)}]:{fleet.port},[{node_address(33)}]:{fleet.port},")
    for server in fleet.servers:
        assert f"MaxStartups {FLEET_MAX_STARTUPS}\n" in server.config_path.read_text()
    # First and last address of each sshd answer, as themselves.
    for index in (0, 15, 16, 31, 32, 34):
        address = node_address(index)
        assert fleet.server_of(address) is fleet.servers[index // MAX_LISTEN_ADDRESSES]
        assert _run_on(fleet, address, "echo $SSH_CONNECTION").split()[2] == address


def test_a_fleet_stops_every_sshd(tmp_path) -> None:
    with Fleet(tmp_path, 17) as fleet:
        assert fleet.running
        servers = list(fleet.servers)
    assert not any(server.running for server in servers)
    assert not listening(node_address(16), fleet.port)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((node_address(0), fleet.port), timeout=2)


def test_one_sshd_listens_on_sixteen_addresses_at_most(tmp_path) -> None:
    hosts = [node_address(i) for i in range(MAX_LISTEN_ADDRESSES + 1)]
    with pytest.raises(ValueError, match="at most 16"):
        SshServer(tmp_path, host=hosts[0], more_hosts=hosts[1:])


def test_an_address_sshd_could_not_bind_fails_the_start(tmp_path) -> None:
    first, taken = "127.1.200.1", "127.1.200.2"
    port = free_port(first)
    with socket.socket() as squatter:
        squatter.bind((taken, port))  # bound, not listening: sshd cannot bind it
        server = SshServer(tmp_path, host=first, port=port, more_hosts=[taken])
        with pytest.raises(ServerError, match=f"does not listen on {taken}"):
            server.start()
    assert not server.running
    # A listener that is not sshd's does not count either.
    with socket.socket() as other:
        other.bind((taken, port))
        other.listen()
        with pytest.raises(ServerError, match=f"does not listen on {taken}"):
            server.start()
