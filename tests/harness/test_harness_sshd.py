"""The sshd harness is a real OpenSSH server across a process boundary: a
paramiko client verifies its host key, authenticates with the generated key
and runs a command."""
from __future__ import annotations

import socket

import paramiko
import pytest

from devservers.sshd import SshServer


def _connect(server: SshServer, known_hosts: str | None = None) -> paramiko.SSHClient:
    sock = socket.create_connection((server.host, server.port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client = paramiko.SSHClient()
    client.load_host_keys(known_hosts or str(server.known_hosts_path))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(
            server.host,
            port=server.port,
            username=server.user,
            key_filename=str(server.client_key_path),
            sock=sock,
            look_for_keys=False,
            allow_agent=False,
            timeout=5,
            banner_timeout=5,
            auth_timeout=5,
        )
    except BaseException:
        client.close()
        sock.close()
        raise
    return client


def _run(client: paramiko.SSHClient, command: str) -> str:
    _, stdout, _ = client.exec_command(command, timeout=5)
    return stdout.read().decode().strip()


def test_it_runs_a_command_on_the_real_sshd(sshd_node: SshServer) -> None:
    client = _connect(sshd_node)
    try:
        assert _run(client, "echo 42") == "42"
        # Commands get the clean HOME, not the operator's (heavy) one.
        assert _run(client, "echo $HOME") == str(sshd_node.home)
    finally:
        client.close()


def test_it_serves_two_nodes_on_two_loopback_addresses(sshd_nodes: list[SshServer]) -> None:
    assert {s.host for s in sshd_nodes} == {"127.0.0.2", "127.0.0.3"}
    for server in sshd_nodes:
        client = _connect(server)
        try:
            assert _run(client, "echo node") == "node"
        finally:
            client.close()


def test_it_refuses_a_changed_host_key(make_sshd, tmp_path) -> None:
    server = make_sshd(start=False)
    old_known_hosts = tmp_path / "known_hosts"
    old_known_hosts.write_text(server.known_hosts_path.read_text())
    server.regenerate_host_key()
    server.start()
    with pytest.raises(paramiko.BadHostKeyException):
        _connect(server, known_hosts=str(old_known_hosts))


def test_it_refuses_an_unknown_host(make_sshd, tmp_path) -> None:
    server = make_sshd()
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        _connect(server, known_hosts=str(empty))


def test_it_keeps_its_keys_across_restarts(tmp_path) -> None:
    first = SshServer(tmp_path / "node")
    key = first.host_public_key
    with SshServer(tmp_path / "node", port=first.port) as again:
        assert again.host_public_key == key
        client = _connect(again)
        try:
            assert _run(client, "echo again") == "again"
        finally:
            client.close()


def test_a_paused_server_answers_nothing_until_resumed(make_sshd) -> None:
    server = make_sshd()
    server.pause()
    with socket.create_connection((server.host, server.port), timeout=2) as sock:
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(64)
    server.resume()
    client = _connect(server)
    try:
        assert _run(client, "echo back") == "back"
    finally:
        client.close()


def test_a_killed_server_refuses_connections(make_sshd) -> None:
    server = make_sshd()
    server.kill()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.host, server.port), timeout=2)


def _password_login(server: SshServer, user: str, password: str) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.load_host_keys(str(server.known_hosts_path))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(server.host, port=server.port, username=user, password=password, look_for_keys=False,
                       allow_agent=False, timeout=5, banner_timeout=5, auth_timeout=5)
    except BaseException:
        client.close()
        raise
    return client


def test_the_password_account_logs_in_by_its_password_and_by_nothing_else(
    sshd_password_node: SshServer, password_account
) -> None:
    client = _password_login(sshd_password_node, password_account.user, password_account.password)
    try:
        assert _run(client, "id -un") == password_account.user
    finally:
        client.close()
    with pytest.raises(paramiko.AuthenticationException):
        _password_login(sshd_password_node, password_account.user, password_account.password + "x").close()
    # The key every other login uses does not stand in for the password.
    key_login = paramiko.SSHClient()
    key_login.load_host_keys(str(sshd_password_node.known_hosts_path))
    try:
        with pytest.raises(paramiko.AuthenticationException):
            key_login.connect(sshd_password_node.host, port=sshd_password_node.port,
                              username=password_account.user,
                              key_filename=str(sshd_password_node.client_key_path), look_for_keys=False,
                              allow_agent=False, timeout=5, banner_timeout=5, auth_timeout=5)
    finally:
        key_login.close()
    # Everyone else still logs in by key, as on every other test server.
    client = _connect(sshd_password_node)
    try:
        assert _run(client, "echo key") == "key"
    finally:
        client.close()


def test_a_default_server_refuses_passwords(sshd_node: SshServer, password_account) -> None:
    with pytest.raises(paramiko.AuthenticationException):
        _password_login(sshd_node, password_account.user, password_account.password).close()
