"""Waiting for a descriptor to become readable, with poll(), never select().

select() cannot watch a descriptor numbered 1024 or above (FD_SETSIZE): it
fails with "filedescriptor out of range in select()". A worker process that
keeps a connection to every node of a large fleet holds about three
descriptors per node (the socket, and the pipe behind a paramiko Channel's
fileno()), so past ~330 nodes select() would fail every wait of most nodes.
poll() has no such limit; tests/deploy/test_no_select.py keeps select() out
of apps/.
"""
from __future__ import annotations

import math
import select

#: What select() counted as readable: data, urgent data; poll() adds hang-up
#: and error by itself (both are "readable" to a caller that then reads EOF).
_READABLE = select.POLLIN | select.POLLPRI


def wait_readable(fd, timeout: float) -> bool:
    """Whether ``fd`` (a number, or an object with fileno() such as a paramiko
    Channel) became readable within ``timeout`` seconds. The timeout is
    rounded up to whole milliseconds (poll's unit), so a short remainder
    still waits instead of spinning; a negative one does not wait at all
    (poll would take it as "forever")."""
    poller = select.poll()
    poller.register(fd, _READABLE)
    return bool(poller.poll(max(0, math.ceil(timeout * 1000))))
