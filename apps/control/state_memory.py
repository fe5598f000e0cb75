"""What an evaluator process remembers of the breach states between runs.

Why remember at all: at fleet size (10,000 series) reading every state back
from memcached each run costs as much as reading the samples, and the process
that wrote the states last already holds them. So after writing its states an
evaluator writes a *writer token* (``WRITER_KEY``), and the next run reads only
that key: while it is still this process's own token, no other evaluator has
written since, and the remembered states are the stored ones. Any other value
(another evaluator process took a turn, memcached restarted empty, the key
expired) means a full read, so several evaluators stay correct and merely lose
the shortcut. A write racing the token read is the race any two evaluators
already have, and it is harmless for the same reason (apps/control/evaluator.py:
counting is a function of the samples, and a reset follows from the trigger's
``last_fired_at``).

The memory also bridges a memcached outage: the evaluator continues counting
from the states it last knew.
"""
from __future__ import annotations

import os
import uuid

from . import breach
from .breach import BreachState

WRITER_KEY = "pyscaler:evaluator:states-writer"


class StateMemory:
    """The states (encoded as stored, and decoded) this process last read or
    wrote, and the token it stored with them (None: not known to be current)."""

    def __init__(self) -> None:
        self.encoded: dict[str, str] = {}
        self.decoded: dict[str, dict[int, BreachState]] = {}
        self.token: str | None = None
        self._run = 0

    def decode(self, key: str, raw: str | None) -> dict[int, BreachState]:
        """``breach.decode_states`` of a value, from memory when it is the one
        remembered (parsing 10,000 states a run is a tenth of the evaluator's time)."""
        if raw is not None and self.encoded.get(key) == raw:
            return self.decoded[key]
        return breach.decode_states(raw)

    def new_token(self) -> str:
        """A token no other process and no earlier run of this one has written."""
        self._run += 1
        return f"{os.getpid()}-{uuid.uuid4().hex[:12]}-{self._run}"

    def remember(self, encoded: dict[str, str], decoded: dict[str, dict[int, BreachState]],
                 token: str | None) -> None:
        self.encoded, self.decoded, self.token = encoded, decoded, token
