"""A bounded buffer for a command's output, filled as it streams in.

A node may print gigabytes; keeping all of it until the command ends and
trimming then would let one noisy script exhaust the worker's memory. This
keeps the first part (what the command set out to do) and the last part (why
it ended), counts what lies between, and drops it as it arrives, the way
chain.bound_text trims a step's output.
"""
from __future__ import annotations


class HeadTail:
    """The first quarter of ``limit`` characters and the last three quarters;
    the middle counted (``cut``) and dropped."""

    def __init__(self, limit: int) -> None:
        self.head_limit = max(0, limit // 4)
        self.tail_limit = max(1, limit - self.head_limit)
        self.head = ""
        self.tail = ""
        self.cut = 0
        self.total = 0

    def add(self, data: str) -> None:
        self.total += len(data)
        if len(self.head) < self.head_limit:
            room = self.head_limit - len(self.head)
            self.head += data[:room]
            data = data[room:]
        if not data:
            return
        if len(data) >= self.tail_limit:
            self.cut += len(self.tail) + len(data) - self.tail_limit
            self.tail = data[-self.tail_limit:]
            return
        self.tail += data
        excess = len(self.tail) - self.tail_limit
        if excess > 0:
            self.cut += excess
            self.tail = self.tail[excess:]

    def text(self) -> str:
        if not self.cut:
            return self.head + self.tail
        return f"{self.head}\n[... {self.cut} characters cut ...]\n{self.tail}"


def bounded(text: str, limit: int) -> str:
    """``text`` as a HeadTail of ``limit`` would keep it."""
    kept = HeadTail(limit)
    kept.add(text)
    return kept.text()
