"""Collect messages signed by the dispatcher, verified by the worker.

A collect message carries counter commands, node addresses and secret
references, and a worker runs it as given: without a signature, anyone who
can publish to the broker would run commands on every node and have workers
resolve any secret. The dispatcher (on the beat host) signs each message
with HMAC-SHA256 under COLLECT_SIGNING_KEY; a worker checks the signature
before it restores a single row, and a message that fails is rejected whole.
The web host publishes only step tasks and needs no key (README, deploying).

The envelope carries the signed JSON text itself, not the rows: the worker
verifies exactly the bytes that were signed, whatever the broker's
serializer makes of numbers or key order, then parses them. The round's
``at`` is signed too, so a captured message cannot be replayed as another
round's.

Envelope (``VERSION``)::

    {"version": 2, "signed": "<JSON of {'at': at, 'message': message}>", "signature": "<hex>"}
"""
from __future__ import annotations

import hashlib
import hmac
import json

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

VERSION = 2


class ForgedMessage(ValueError):
    """A collect message not signed with this installation's key."""


def signing_key() -> bytes:
    """COLLECT_SIGNING_KEY (pyscaler.settings: unset, a key generated once
    into this installation's var/)."""
    key = settings.COLLECT_SIGNING_KEY
    if not key:
        raise ImproperlyConfigured("COLLECT_SIGNING_KEY is empty: collect messages can be neither signed nor checked")
    return key.encode()


def _mac(text: str, key: bytes) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def sign(message: dict, at: str, key: bytes | None = None) -> dict:
    """The envelope of one collect message for the round ``at``."""
    text = json.dumps({"at": at, "message": message}, sort_keys=True, separators=(",", ":"))
    return {"version": VERSION, "signed": text, "signature": _mac(text, key or signing_key())}


def is_envelope(message: object) -> bool:
    return isinstance(message, dict) and "signature" in message


def open_signed(envelope: object, at: str) -> dict:
    """The message inside a signed envelope; ForgedMessage (saying why) when
    it is unsigned, signed with another key, altered, or for another round."""
    if not is_envelope(envelope):
        raise ForgedMessage("the message is not signed")
    text, signature = envelope.get("signed"), envelope.get("signature")
    if not isinstance(text, str) or not isinstance(signature, str):
        raise ForgedMessage("the envelope is malformed")
    try:
        key = signing_key()
    except ImproperlyConfigured as exc:
        raise ForgedMessage(str(exc)) from exc
    if not hmac.compare_digest(_mac(text, key).encode(), signature.encode()):
        raise ForgedMessage("the signature does not match (another key, or the message was altered)")
    body = json.loads(text)
    if body.get("at") != at:
        raise ForgedMessage(f"the message was signed for another round ({body.get('at')!r}, not {at!r})")
    return body["message"]
