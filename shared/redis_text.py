"""Redis answers in bytes (clients never set ``decode_responses``, for speed): one way
to turn an id, key or field from a reply into text."""

from __future__ import annotations


def as_str(raw: object) -> str:
    """``raw`` as text: bytes decoded as UTF-8, anything else through ``str``."""
    return raw.decode() if isinstance(raw, bytes) else str(raw)
