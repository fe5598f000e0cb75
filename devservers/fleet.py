"""A fleet of simulated nodes: hundreds of loopback addresses served by a
few real sshd processes.

Node ``i`` is the address 127.1.x.y (Linux routes all of 127.0.0.0/8 to the
loopback device, so binding there needs no configuration); one sshd serves
16 of them (OpenSSH's MAX_LISTEN_SOCKS), all on one port, so 410 nodes are
26 sshd processes. They share one host key and one client key: SSH_KNOWN_HOSTS
is one file of one line per sshd, each naming its addresses, and every node
logs in as ``user`` with ``client_key_path``. To a collector each address is
a node of its own: its own connection, session and shell.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from types import TracebackType
from typing import Self

from devservers.sshd import MAX_LISTEN_ADDRESSES, SshServer
from devservers.util import free_port

#: sshd's MaxStartups for the fleet: a round opens many logins at once.
FLEET_MAX_STARTUPS = "1000"
_KEY_FILES = ("ssh_host_ed25519_key", "ssh_host_ed25519_key.pub", "id_ed25519", "id_ed25519.pub")


def node_address(index: int) -> str:
    """The loopback address of node ``index`` (0-based): 127.1.0.1, ...,
    127.1.0.250, 127.1.1.1, ... (no .0 or .255, which read as network and
    broadcast addresses to people and some tools)."""
    if not 0 <= index < 250 * 256:
        raise ValueError(f"node index {index} is out of range")
    return f"127.1.{index // 250}.{index % 250 + 1}"


class Fleet:
    """``n`` nodes on ``ceil(n / 16)`` sshd processes, all on one port."""

    def __init__(self, workdir: Path, n: int, port: int | None = None) -> None:
        if n < 1:
            raise ValueError("a fleet has at least one node")
        self.workdir = Path(workdir)
        self.addresses = [node_address(i) for i in range(n)]
        self.port = port or free_port(self.addresses[0])
        groups = [self.addresses[i:i + MAX_LISTEN_ADDRESSES]
                  for i in range(0, n, MAX_LISTEN_ADDRESSES)]
        self.servers: list[SshServer] = []
        for number, group in enumerate(groups):
            workdir = self.workdir / f"sshd-{number}"
            if self.servers:  # the first server made the keys: the others share them
                workdir.mkdir(parents=True, exist_ok=True)
                for name in _KEY_FILES:
                    shutil.copy2(self.servers[0].workdir / name, workdir / name)
            self.servers.append(SshServer(workdir, host=group[0], port=self.port, more_hosts=group[1:],
                                          max_startups=FLEET_MAX_STARTUPS))
        self.known_hosts_path = self.workdir / "known_hosts"
        self.known_hosts_path.write_text("".join(f"{s.host_key_line}\n" for s in self.servers))

    @property
    def user(self) -> str:
        return self.servers[0].user

    @property
    def client_key_path(self) -> Path:
        return self.servers[0].client_key_path

    @property
    def host_public_key(self) -> str:
        return self.servers[0].host_public_key

    def server_of(self, address: str) -> SshServer:
        """The sshd serving ``address``."""
        return self.servers[self.addresses.index(address) // MAX_LISTEN_ADDRESSES]

    @property
    def running(self) -> bool:
        return all(server.running for server in self.servers)

    def start(self, timeout: float = 15.0) -> Self:
        try:
            for server in self.servers:
                server.start(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        return (f"Fleet({len(self.addresses)} nodes on {len(self.servers)} sshd, port {self.port}, "
                f"running={self.running})")
