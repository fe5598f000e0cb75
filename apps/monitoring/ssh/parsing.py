"""Turning a counter command's standard output into one number.

Python's float() is too lenient for this: it accepts "1_000", "nan",
"infinity" and non-ASCII digits, none of which a monitoring command should be
allowed to slip through as a sample. The accepted grammar is a plain decimal
int or float, optionally signed, optionally with an exponent, with surrounding
ASCII whitespace.
"""
from __future__ import annotations

import math
import re

from apps.monitoring.samples import NotANumber

_NUMBER = re.compile(rb"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_WHITESPACE = b" \t\r\n\f\v"


def parse_number(output: bytes) -> float:
    """The one number of a command's output; NotANumber says how it is not one."""
    text = output.strip(_WHITESPACE)
    if not text:
        raise NotANumber("output is empty, expected one number")
    if not _NUMBER.fullmatch(text):
        if len(text.split()) > 1 and all(_NUMBER.fullmatch(word) for word in text.split()):
            raise NotANumber(f"output holds {len(text.split())} numbers, expected exactly one")
        raise NotANumber("output is not a number")
    value = float(text)
    if math.isinf(value):
        raise NotANumber("output is a number too large for a float")
    return value


def output_text(output: bytes) -> str:
    """Output as text for error messages and the sample log; undecodable bytes
    are shown as U+FFFD rather than failing the error report itself."""
    return output.decode("utf-8", errors="replace")
