"""One round trip per node: the batch script and how its output is taken apart.

A node keeps one long-lived shell reading commands on its standard input (the
fastest way to run commands remotely: field-notes measured it as the floor).
Each batch is written to it as a script in which every counter command

* runs in its own subshell, so ``exit``, ``cd``, variables or ``set -e`` in
  one command cannot touch the shell or the commands after it (except a
  plain external program, which cannot do any of that: see "Cost");
* goes through ``eval`` of a single-quoted copy of its text, so a command
  with an unbalanced quote, a stray ``)`` or an unterminated here-document is
  a syntax error of that command (exit status 2, message on its stderr)
  instead of swallowing the rest of the script (a plain "program arguments"
  command, which cannot do that, is written as it is: see _SIMPLE);
* reads ``/dev/null``, so a command that reads standard input (``cat`` with
  no argument, ``read``) cannot eat the script behind it;
* writes its stderr to a per-shell temporary file (size-limited with
  ``ulimit -f``), emitted only when non-empty;
* is followed on stdout by a trailer ``\\n<nonce>:<index>:<exit status>\\n``,
  or ``...:<status>:e\\n<first lines of stderr>\\n<nonce>:<index>:e\\n``.

The nonce is 96 random bits, fresh for every batch and written only into the
script text, never into a variable or the environment, so no command can
print it except by chance (2**-96). A command's output is therefore exactly
the bytes between two trailers: text that looks like a trailer, binary bytes,
a missing final newline or megabytes of output cannot shift the framing.

Cost, measured against the raw floor (commands written bare to /bin/sh): no
temporary files per command, no length counting (``${#var}`` counts
characters, not bytes, and command substitution drops NULs and trailing
newlines), no extra processes. A "simple" command that runs an external
program (``cut -d' ' -f1 /proc/loadavg``: one program, plain words and
redirections, and not a shell builtin) cannot change the shell's state, so it
runs in place inside ``{ ...; }`` rather than a subshell: dash then starts it
with vfork, exactly as the raw shell does, where a subshell costs a full
fork (measured: ~115 µs more per command, ~15% of a typical counter, and
the node's CPU is what collection spends). Builtins (``exit``, ``cd``,
``set``, ``exec``, ``read``…) and anything else keep their subshell. The
``ulimit -f`` on the stderr file is set once for the whole shell (children
inherit it) instead of once per command.
stderr goes to a file rather than the channel's stderr because framing it
there needs a second trailer per command, i.e. a second SSH packet, which
measured at ~20% of the whole cost.
"""
from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

#: ulimit -f blocks (512 bytes in POSIX sh, 1 KiB in bash): a command spewing
#: stderr is stopped (SIGXFSZ) instead of filling the node's /tmp.
STDERR_FILE_BLOCKS = 16384

#: Sent once per shell. ``_f`` is the stderr file (``/dev/null`` when no
#: temporary file can be made: commands still run, stderr is lost). The trap
#: removes it when the shell exits normally. ``_pyscaler_end`` runs after the
#: command has finished, so its arguments (the nonce) are never visible to it.
#: It reads at most 20 lines of stderr with builtins (no fork). The file size
#: limit is the shell's, so every command inherits it; the shell catches
#: SIGXFSZ itself because it writes its own "File size limit exceeded" notice
#: into the (full) stderr file, which would otherwise kill it. A caught signal
#: is reset by exec, so commands still die of SIGXFSZ (status 153).
PRELUDE = r"""_f=$(mktemp 2>/dev/null) && trap 'rm -f "$_f"' EXIT || _f=/dev/null
ulimit -f @BLOCKS@ 2>/dev/null; trap : XFSZ
_pyscaler_end() {
  if [ -s "$_f" ]; then
    printf '\n%s:%s:e\n' "$1" "$2"
    _n=0
    while [ "$_n" -lt 20 ] && { IFS= read -r _l || [ -n "$_l" ]; }; do printf '%s\n' "$_l"; _n=$((_n+1)); _l=; done < "$_f"
    printf '\n%s:e\n' "$1"
  else
    printf '\n%s:%s\n' "$1" "$2"
  fi
}
""".replace("@BLOCKS@", str(STDERR_FILE_BLOCKS))

#: Bytes of each command's stdout / stderr kept for parsing and error
#: messages; the rest is counted and dropped (a counter prints one number).
KEEP_STDOUT = 4096
KEEP_STDERR = 2048

_TRAILER = re.compile(rb"(\d+):(\d+)(:e)?")
_STDERR_END = re.compile(rb"(\d+):e")

# A "simple command": a program and plain words or redirections, nothing the
# shell could read as more than one command (no newline, ; & | ( ) $ ` or
# unbalanced quotes: the pattern only admits closed quotes). Such a command is
# written into the script as it is; anything else goes through eval, which is
# always safe and costs one more fork.
_WORD = r"""(?:[A-Za-z0-9_./:,+%@^=~*?\[\]-]|'[^']*'|"[^"$`\\]*")+"""
_REDIRECT = rf"""[0-9]?(?:>>|>|<)[ \t]*{_WORD}|[0-9]?>&[0-9]"""
_SIMPLE = re.compile(rf"""[ \t]*(?P<program>[A-Za-z0-9_./+-]+)(?:[ \t]+(?:{_REDIRECT}|{_WORD}))*[ \t]*""")
# Reserved words would start a compound command and turn the line into a
# syntax error of the whole script (a non-interactive shell exits on those).
_RESERVED = frozenset("case coproc do done elif else esac fi for function if in select then time until while".split())
# Builtins of dash and bash (and our own function): these run inside the
# shell and may change it (exit, cd, set, exec, read, ulimit, trap, ., source…),
# so a command naming one always gets a subshell. A name with a slash is a
# path, never a builtin.
_BUILTINS = frozenset("""
    . : [ alias bg bind break builtin caller cd chdir command compgen complete compopt continue declare
    dirs disown echo enable eval exec exit export false fc fg getopts hash help history jobs kill let
    local logout mapfile popd printf pushd pwd read readarray readonly return set shift shopt source
    suspend test times trap true type typeset ulimit umask unalias unset wait _pyscaler_end
""".split())


class FramingError(Exception):
    """The shell's output does not follow the batch protocol (a bug or a broken shell)."""


def make_nonce() -> str:
    return secrets.token_hex(12)


def quote(command: str) -> str:
    """The command as one single-quoted shell word (POSIX: no escapes inside
    single quotes, so a quote is closed, escaped and reopened)."""
    if "\x00" in command:
        raise ValueError("a command cannot contain a NUL character")
    return "'" + command.replace("'", "'\\''") + "'"


def _program(command: str) -> str | None:
    """The program a simple command runs, or None when it is not simple."""
    match = _SIMPLE.fullmatch(command)
    if not match or match["program"] in _RESERVED:
        return None
    return match["program"]


def is_simple(command: str) -> bool:
    return _program(command) is not None


def runs_in_place(command: str) -> bool:
    """True for a simple command running an external program: it cannot touch
    the shell, so it needs no subshell (see the module's "Cost")."""
    program = _program(command)
    return program is not None and ("/" in program or program not in _BUILTINS)


def command_line(command: str, nonce: str, index: int) -> str:
    if runs_in_place(command):
        run = f"{{ {command.strip()}; }}"
    elif is_simple(command):
        run = f"( {command.strip()} )"
    else:
        run = f"( eval {quote(command)} )"
    return f"{run} </dev/null 2>\"$_f\"; _pyscaler_end {nonce}:{index} $?\n"


def batch_script(commands: Sequence[str], nonce: str) -> bytes:
    return "".join(command_line(command, nonce, i) for i, command in enumerate(commands)).encode()


def handshake_script(nonce: str) -> bytes:
    """Sent once when the shell starts: proves it runs POSIX syntax and
    reports its pid, which is its process group (sshd puts every session in a
    new session), so a hung batch can be killed as a whole."""
    return (PRELUDE + f"printf '%s:%s\\n' {nonce} \"$$\"\n").encode()


def parse_handshake(line: bytes, nonce: str) -> int:
    prefix = f"{nonce}:".encode()
    if not line.startswith(prefix) or not line[len(prefix):].strip().isdigit():
        raise FramingError(f"unexpected answer from the shell: {line[:200]!r}")
    return int(line[len(prefix):].strip())


@dataclass(frozen=True)
class CommandOutput:
    """What one command left: its exit status and (the kept part of) its output."""

    status: int
    stdout: bytes
    stderr: bytes = b""
    stdout_dropped: int = 0  # bytes beyond KEEP_STDOUT


class BatchParser:
    """Splits the shell's stdout at the batch's trailers as it arrives,
    keeping at most KEEP_* bytes of each part, so memory stays bounded
    whatever a command prints."""

    def __init__(self, nonce: str, count: int) -> None:
        self.count = count
        self.received = 0
        self._marker = b"\n" + nonce.encode() + b":"
        self._pending = bytearray()
        self._kept = bytearray()
        self._dropped = 0
        self._keep = KEEP_STDOUT
        self._outputs: list[CommandOutput] = []
        self._awaiting_stderr: tuple[int, bytes, int] | None = None  # (status, stdout, dropped)

    @property
    def finished(self) -> int:
        """Commands whose exit status has arrived."""
        return len(self._outputs) + (self._awaiting_stderr is not None)

    @property
    def done(self) -> bool:
        return len(self._outputs) >= self.count

    def outputs(self) -> list[CommandOutput]:
        """The finished commands, in order (a command whose stderr was cut off
        keeps what arrived of it)."""
        outputs = list(self._outputs)
        if self._awaiting_stderr is not None:
            status, stdout, dropped = self._awaiting_stderr
            outputs.append(CommandOutput(status, stdout, self._current(), dropped))
        return outputs

    def unfinished_output(self) -> bytes:
        """What the command running when the batch was cut short had printed."""
        return b"" if self._awaiting_stderr is not None else self._current()

    def feed(self, data: bytes) -> None:
        self.received += len(data)
        if self.done:
            return  # late output of a background process: not any command's
        self._pending += data
        while not self.done:
            at = self._pending.find(self._marker)
            if at < 0:
                # Keep a tail that may be the beginning of a marker split across reads.
                self._take(max(0, len(self._pending) - (len(self._marker) - 1)))
                return
            self._take(at)
            end = self._pending.find(b"\n", len(self._marker))
            if end < 0:
                return  # trailer not complete yet
            self._trailer(bytes(self._pending[len(self._marker):end]))
            del self._pending[: end + 1]

    def _trailer(self, text: bytes) -> None:
        index = len(self._outputs)
        if self._awaiting_stderr is not None:
            match = _STDERR_END.fullmatch(text)
            if match is None or int(match[1]) != index:
                raise FramingError(f"bad stderr end {text!r} (expected command {index})")
            status, stdout, dropped = self._awaiting_stderr
            self._outputs.append(CommandOutput(status, stdout, bytes(self._kept).rstrip(b"\n"), dropped))
            self._awaiting_stderr = None
            self._reset(KEEP_STDOUT)
            return
        match = _TRAILER.fullmatch(text)
        if match is None or int(match[1]) != index:
            raise FramingError(f"bad trailer {text!r} (expected command {index})")
        if match[3]:
            self._awaiting_stderr = (int(match[2]), bytes(self._kept), self._dropped)
            self._reset(KEEP_STDERR)
        else:
            self._outputs.append(CommandOutput(int(match[2]), bytes(self._kept), b"", self._dropped))
            self._reset(KEEP_STDOUT)

    def _reset(self, keep: int) -> None:
        self._kept.clear()
        self._dropped = 0
        self._keep = keep

    def _current(self) -> bytes:
        return bytes(self._kept) + bytes(self._pending[: max(0, self._keep - len(self._kept))])

    def _take(self, n: int) -> None:
        room = self._keep - len(self._kept)
        if room > 0:
            self._kept += self._pending[: min(n, room)]
        self._dropped += max(0, n - max(room, 0))
        del self._pending[:n]
