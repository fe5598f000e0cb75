"""wait_readable, the one wait SSH collection and actions use: poll() with
select()'s meaning and timeouts, for descriptors select() cannot take."""
from __future__ import annotations

import os
import resource
import select
import time

import pytest

from apps.monitoring.ssh.readiness import wait_readable

HIGH_FD = 1500


@pytest.fixture
def high_pipe():
    """A pipe whose read end is descriptor 1500, beyond select()'s 1023."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft <= HIGH_FD:
        if hard != resource.RLIM_INFINITY and hard <= HIGH_FD:
            pytest.fail(f"the hard descriptor limit {hard} is below {HIGH_FD + 1}", pytrace=False)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    read_end, write_end = os.pipe()
    os.dup2(read_end, HIGH_FD)
    os.close(read_end)
    ends = [HIGH_FD, write_end]
    yield ends
    for fd in ends:
        if fd is not None:
            os.close(fd)


def test_it_waits_on_a_descriptor_select_cannot_take(high_pipe):
    read_end, write_end = high_pipe
    with pytest.raises(ValueError, match="out of range"):
        select.select([read_end], [], [], 0)
    began = time.monotonic()
    assert wait_readable(read_end, 0.2) is False
    assert time.monotonic() - began >= 0.19
    os.write(write_end, b"x")
    assert wait_readable(read_end, 5) is True


def test_a_closed_writer_counts_as_readable(high_pipe):
    read_end, write_end = high_pipe
    assert wait_readable(read_end, 0) is False
    os.close(write_end)
    high_pipe[1] = None
    assert wait_readable(read_end, 5) is True  # end of file (POLLHUP): the reader reads b""
    assert os.read(read_end, 1) == b""


def test_an_elapsed_timeout_does_not_wait(high_pipe):
    read_end, _ = high_pipe
    began = time.monotonic()
    assert wait_readable(read_end, -1.0) is False  # poll() would take a negative timeout as "forever"
    assert wait_readable(read_end, 0.0001) is False  # rounded up to 1 ms, not down to a spin
    assert time.monotonic() - began < 0.5
