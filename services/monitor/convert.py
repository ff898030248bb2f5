"""Turning raw Redis replies (bytes, plain hash fields, loose entries) into values.

Hash fields are written by other services as text; anything unparsable, non-finite
or an IB "no value" sentinel (-1 on a price) becomes ``None`` rather than a number
a trader might believe.
"""

from __future__ import annotations

import math
from typing import Any

from services.monitor.models import Entry
from shared.envelope import loose_body

_NS = 1_000_000_000


def text(raw: Any) -> str:
    if isinstance(raw, bytes):
        return raw.decode(errors="replace")
    return "" if raw is None else str(raw)


def str_map(raw: dict[Any, Any]) -> dict[str, str]:
    return {text(k): text(v) for k, v in raw.items()}


def num(raw: Any) -> float | None:
    """A finite float, or None for empty strings, NaN, infinities and junk."""
    try:
        value = float(text(raw))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def price(raw: Any) -> float | None:
    """A usable price: positive and finite (IB's -1 and 0 mean "no value")."""
    value = num(raw)
    return value if value is not None and 0 < value <= 1e9 else None


def integer(raw: Any, default: int = 0) -> int:
    value = num(raw)
    return int(value) if value is not None and abs(value) < 2**63 else default


def epoch_s(raw: Any) -> float | None:
    """Seconds since the epoch from a ns integer or a seconds float (either is written)."""
    value = num(raw)
    if value is None or value <= 0:
        return None
    return value / _NS if value > 1e12 else value


def jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy of a loosely decoded body (bytes, odd keys, NaN)."""
    if depth > 8:
        return "…"
    if isinstance(value, dict):
        return {text(k): jsonable(v, depth + 1) for k, v in list(value.items())[:100]}
    if isinstance(value, list | tuple):
        return [jsonable(v, depth + 1) for v in value[:100]]
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


def loose_entry(entry_id: Any, fields: dict[Any, Any]) -> Entry:
    """Any stream entry (known type or not) as a readable ``Entry``."""
    header: dict[str, str] = {}
    body: Any = None
    rest: dict[str, Any] = {}
    for k, v in fields.items():
        name = text(k)
        if name in ("body", "orig.body") and isinstance(v, bytes):
            decoded = jsonable(loose_body(v))
            if name == "body":
                body = decoded
            else:
                rest[name] = decoded
        elif name in ("type", "src", "key", "ts"):
            header[name] = text(v)
        else:
            rest[name] = text(v)[:2000]
    return Entry(
        id=text(entry_id),
        ts=epoch_s(header.get("ts")),
        type=header.get("type", ""),
        src=header.get("src", ""),
        key=header.get("key", ""),
        body=body,
        fields=rest,
    )
