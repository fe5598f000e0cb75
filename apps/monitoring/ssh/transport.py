"""The paramiko Transport collection's persistent connections use."""
from __future__ import annotations

import paramiko

#: How often an idle connection's paramiko thread wakes (paramiko: 0.1 s).
IDLE_WAKEUP_S = 1.0


class QuietTransport(paramiko.Transport):
    """A Transport whose reader thread wakes once a second when idle, not ten
    times: paramiko reads its socket with a short timeout only to notice a
    close and time keepalives. A collect process holds hundreds of idle
    persistent connections, and their wake-ups (each taking the GIL) grew to
    most of its CPU at fleet size, starving the handshakes of new ones. A
    close is still seen at once (``stop_thread`` closes the packetizer, then
    the socket), and keepalives still go every KEEPALIVE_S."""

    _active_check_timeout = IDLE_WAKEUP_S
