"""The bounded buffer a node's output streams into: whatever the chunking,
the same head, cut count and tail as trimming the whole text at once."""
from __future__ import annotations

import pytest

from apps.actions.output_buffer import HeadTail, bounded


def fed(text: str, limit: int, chunk: int) -> str:
    kept = HeadTail(limit)
    for start in range(0, len(text), chunk):
        kept.add(text[start:start + chunk])
    assert kept.total == len(text)
    assert len(kept.head) + len(kept.tail) <= limit
    return kept.text()


@pytest.mark.parametrize("chunk", [1, 7, 100, 999, 5000])
def test_any_chunking_keeps_the_same_head_count_and_tail(chunk):
    text = "".join(f"line {i}\n" for i in range(500))
    assert fed(text, 400, chunk) == bounded(text, 400)
    result = bounded(text, 400)
    assert result.startswith("line 0\nline 1\n")
    assert result.endswith("line 499\n")
    cut = len(text) - 400
    assert f"\n[... {cut} characters cut ...]\n" in result


def test_short_text_is_kept_whole():
    assert fed("short", 400, 2) == "short"
    assert bounded("x" * 400, 400) == "x" * 400
