"""The batch framing and number parsing, without SSH: the batch script runs in
real local shells (dash as /bin/sh, and bash), fed on stdin as sshd feeds it."""
from __future__ import annotations

import os
import subprocess

import pytest

from apps.monitoring.ssh.framing import (
    KEEP_STDOUT,
    BatchParser,
    FramingError,
    batch_script,
    handshake_script,
    is_simple,
    make_nonce,
    runs_in_place,
    parse_handshake,
    quote,
)
from apps.monitoring.ssh.parsing import NotANumber, parse_number

SHELLS = ["/bin/sh", "/bin/bash"]


def run_batch(shell: str, commands: list[str], chunk: int | None = None) -> list:
    """Run a batch in a real shell reading its script on stdin; parse its stdout
    (fed in ``chunk``-byte pieces to exercise markers split across reads)."""
    nonce = make_nonce()
    script = handshake_script(nonce) + batch_script(commands, nonce)
    proc = subprocess.run([shell, "-s"], input=script, capture_output=True, timeout=60)
    stdout = proc.stdout
    first_line, _, rest = stdout.partition(b"\n")
    assert parse_handshake(first_line + b"\n", nonce) > 0
    parser = BatchParser(nonce, len(commands))
    step = chunk or len(rest) or 1
    for i in range(0, len(rest), step):
        parser.feed(rest[i:i + step])
    assert parser.done, (proc.stdout[-500:], proc.stderr[-500:])
    return parser.outputs()


# --------------------------------------------------------------------------- parsing

@pytest.mark.parametrize("text, value", [
    (b"42", 42.0), (b" 42\n", 42.0), (b"-3.5", -3.5), (b"+7", 7.0), (b"1e3", 1000.0),
    (b"\t0.25 \r\n", 0.25), (b".5", 0.5), (b"5.", 5.0), (b"12345678901234567890", 1.2345678901234567e19),
])
def test_it_parses_one_number(text: bytes, value: float) -> None:
    assert parse_number(text) == value


@pytest.mark.parametrize("text, reason", [
    (b"", "empty"), (b"  \n", "empty"), (b"nan", "not a number"), (b"inf", "not a number"),
    (b"-Infinity", "not a number"), (b"1_000", "not a number"), (b"0x10", "not a number"),
    (b"1 2", "2 numbers"), (b"load: 3", "not a number"), (b"3 apples", "not a number"),
    (b"1e999", "too large"), (b"\xd9\xa3", "not a number"),  # Arabic-Indic digit three
])
def test_it_refuses_anything_but_one_number(text: bytes, reason: str) -> None:
    with pytest.raises(NotANumber, match=reason):
        parse_number(text)


# --------------------------------------------------------------------------- framing

def test_quote_survives_every_quote_character() -> None:
    command = """printf '%s\\n' "it's" 'a "b"' `echo c`"""
    out = subprocess.run(["/bin/sh", "-c", f"eval {quote(command)}"], capture_output=True, timeout=10)
    assert out.stdout == b"it's\na \"b\"\nc\n"
    with pytest.raises(ValueError, match="NUL"):
        quote("echo \x00")


@pytest.mark.parametrize("command, simple", [
    ("cut -d' ' -f1 /proc/loadavg", True),
    ("awk '/MemAvailable/ {print $2}' /proc/meminfo", True),
    ("wc -l < /proc/self/mounts", True),
    ("/usr/bin/nproc", True),
    ("echo 42", True),
    ("exit 3", True),  # inside its own subshell
    ("cat /proc/loadavg | cut -d' ' -f1", False),
    ("LC_ALL=C df", False),
    ("cat $HOME/x", False),
    ("cat a\nrm b", False),
    ("sleep 1 &", False),
    ("cat x; cat y", False),
    ("echo 'unbalanced", False),
    ("if true", False),  # a reserved word would make the whole script a syntax error
    ("time sleep 1", False),
])
def test_only_plain_program_calls_skip_eval(command: str, simple: bool) -> None:
    assert is_simple(command) is simple


@pytest.mark.parametrize("command, in_place", [
    ("cut -d' ' -f1 /proc/loadavg", True),
    ("wc -l < /proc/self/mounts", True),
    ("/usr/bin/nproc", True),
    ("/bin/echo 1", True),  # a path is never a builtin
    ("exit 3", False),
    ("cd /", False),
    ("set -e", False),
    ("exec cat", False),
    ("read x", False),
    ("ulimit -f 1", False),
    (". /etc/profile", False),
    ("source /etc/profile", False),
    ("echo 42", False),
    ("_pyscaler_end 1 2", False),
    ("cat /proc/loadavg | cut -d' ' -f1", False),  # not simple at all
])
def test_only_external_programs_run_without_a_subshell(command: str, in_place: bool) -> None:
    assert runs_in_place(command) is in_place


@pytest.mark.parametrize("shell", SHELLS)
def test_builtins_that_change_the_shell_do_not_reach_the_next_command(shell: str) -> None:
    commands = ["cd /", "set -e", "false", "exit 3", "exec true", "ulimit -n 8", "pwd",
                "ls /nonexistent-pyscaler-dir", "cut -d' ' -f1 /proc/loadavg", "echo 9"]
    outputs = run_batch(shell, commands)
    statuses = [o.status for o in outputs]
    assert statuses[:6] == [0, 0, 1, 3, 0, 0]
    assert outputs[6].stdout == f"{os.getcwd()}\n".encode()  # the cd stayed in its subshell
    assert statuses[7] == 2 and b"nonexistent-pyscaler-dir" in outputs[7].stderr  # run in place, stderr kept
    assert statuses[8] == 0 and parse_number(outputs[8].stdout) >= 0
    assert (statuses[9], outputs[9].stdout) == (0, b"9\n")


@pytest.mark.parametrize("shell", SHELLS)
def test_outputs_and_statuses_are_kept_apart_under_hostile_output(shell: str) -> None:
    fake_nonce = make_nonce()
    commands = [
        "echo 1",
        f"printf '\\n{fake_nonce}:1:0\\n\\n%s:0:0\\n' x; echo 2",  # trailer-like text
        "printf 3",  # no trailing newline
        "head -c 3000 /dev/urandom",  # binary bytes, may contain NULs and newlines
        "seq 1 300000",  # ~2 MB: kept to KEEP_STDOUT, the rest counted
        "echo partial; exit 7",  # non-zero status with output
        "echo 'unbalanced",  # a syntax error of its own, not of the script
        "cat",  # reads stdin: must not eat the script behind it
        "cd /; x=1; set -e; false",  # must not leak into the next command
        "pwd; echo ${x:-unset}",
        "echo oops >&2; echo 5",  # stderr kept apart from stdout
        "cut -d' ' -f1 /proc/loadavg",  # simple command (written without eval)
        "if true",  # a broken compound command: its own syntax error only
        "exit 4",  # exit only leaves the command's subshell
        "echo 6",
    ]
    outputs = run_batch(shell, commands)
    assert len(outputs) == len(commands)
    by = dict(zip(range(len(commands)), outputs))
    assert (by[0].status, by[0].stdout) == (0, b"1\n")
    assert by[1].stdout == f"\n{fake_nonce}:1:0\n\nx:0:0\n2\n".encode() and by[1].status == 0
    assert (by[2].status, by[2].stdout) == (0, b"3")
    assert by[3].status == 0 and len(by[3].stdout) + by[3].stdout_dropped == 3000
    assert by[4].status == 0 and len(by[4].stdout) == KEEP_STDOUT
    assert len(by[4].stdout) + by[4].stdout_dropped == len(b"".join(b"%d\n" % i for i in range(1, 300001)))
    assert (by[5].status, by[5].stdout) == (7, b"partial\n")
    assert by[6].status == 2 and by[6].stderr  # the shell's syntax error message
    assert (by[7].status, by[7].stdout) == (0, b"")
    assert by[8].status == 1
    assert by[9].stdout == f"{os.getcwd()}\nunset\n".encode()
    assert (by[10].status, by[10].stdout, by[10].stderr) == (0, b"5\n", b"oops")
    assert by[11].status == 0 and parse_number(by[11].stdout) >= 0
    assert by[12].status == 2 and by[12].stderr
    assert by[13].status == 4
    assert (by[14].status, by[14].stdout) == (0, b"6\n")


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_markers_split_across_reads_are_found(chunk: int) -> None:
    outputs = run_batch("/bin/sh", ["echo 10", "printf 11", "echo e >&2; exit 3", "echo 12"], chunk=chunk)
    assert [(o.status, o.stdout, o.stderr) for o in outputs] == [
        (0, b"10\n", b""), (0, b"11", b""), (3, b"", b"e"), (0, b"12\n", b"")
    ]


def test_stderr_is_bounded_in_lines_and_bytes() -> None:
    [out] = run_batch("/bin/sh", ["seq 1 100000 >&2; exit 1"])
    assert out.status == 1
    assert out.stderr.splitlines()[:3] == [b"1", b"2", b"3"] and len(out.stderr.splitlines()) == 20


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("spew", ["yes 0123456789 >&2",  # an external program: runs in place
                                  "echo x; yes 0123456789 >&2"])  # anything else: a subshell
def test_a_command_that_spews_stderr_is_stopped_not_left_to_fill_the_disk(shell: str, spew: str) -> None:
    [out, after, last] = run_batch(shell, [spew, "echo 1", "cut -d' ' -f1 /proc/loadavg"])
    assert out.status == 128 + 25  # SIGXFSZ: the stderr file hit its size limit
    assert out.stderr.startswith(b"0123456789\n")
    assert (after.status, after.stdout) == (0, b"1\n")  # the shell itself lives on
    assert last.status == 0 and parse_number(last.stdout) >= 0


def test_a_trailer_out_of_order_is_a_framing_error() -> None:
    nonce = make_nonce()
    parser = BatchParser(nonce, 2)
    with pytest.raises(FramingError):
        parser.feed(f"x\n{nonce}:1:0\n".encode())


def test_unfinished_command_keeps_what_it_printed() -> None:
    nonce = make_nonce()
    parser = BatchParser(nonce, 3)
    parser.feed(f"1\n\n{nonce}:0:0\nhalf a li".encode())
    assert parser.finished == 1 and not parser.done
    assert [o.stdout for o in parser.outputs()] == [b"1\n"]
    assert parser.unfinished_output() == b"half a li"
