"""The envelope: readable header fields plus one JSON body per stream entry.

``redis-cli XREVRANGE md:ticks + - COUNT 5`` shows ``type``, ``v``, ``src``, ``ts``
and ``key`` as plain text and ``body`` as JSON (``{"contract":{"symbol":"SPY"},"bid":…}``)
that msgspec encodes and validates against the schema ``type`` names. Bodies written
before JSON were msgpack maps: they still decode (a msgpack map's first byte is never
JSON's), so entries already in a stream survive the upgrade. Decoding never raises
anything but ``DecodeError``, so a consumer can dead-letter any bad entry.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import msgpack
import msgspec

from shared.schemas import Schema, schema_for

S = TypeVar("S", bound=Schema)

HEADER_FIELDS = ("type", "v", "src", "ts", "key")
_MAX_KEY = 256

_encoder = msgspec.json.Encoder()
_decoders: dict[type[Schema], msgspec.json.Decoder[Any]] = {}
_legacy_decoders: dict[type[Schema], msgspec.msgpack.Decoder[Any]] = {}


class DecodeError(Exception):
    """An entry that cannot be turned into a message; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class Message(Generic[S]):
    """A decoded entry: header fields plus the typed body."""

    body: S
    src: str
    ts: int
    key: str = ""
    id: str = field(default="", compare=False)

    @property
    def type(self) -> str:
        return self.body.TYPE

    @property
    def v(self) -> int:
        return self.body.VERSION


def now_ns() -> int:
    return time.time_ns()


def encode(body: Schema, src: str, key: str = "", ts: int | None = None) -> dict[bytes, bytes]:
    """Fields for XADD: header as readable text, body as compact JSON."""
    raw = _encoder.encode(body)
    # Rare: bodies omit defaults. (find: 70 ns cheaper than ``in`` on CPython 3.11.)
    if raw.find(b"null") >= 0:
        raw = _visible_non_finite(body, raw)
    return {
        b"type": body.TYPE.encode(),
        b"v": str(body.VERSION).encode(),
        b"src": src.encode(),
        b"ts": str(now_ns() if ts is None else ts).encode(),
        b"key": key.encode(),
        b"body": raw,
    }


def _visible_non_finite(body: Schema, raw: bytes) -> bytes:
    """``raw``, unless ``body`` holds a NaN or infinity that msgspec wrote as ``null``.

    ``null`` reads back as "missing": a fill whose price went NaN would quietly lose
    its price. Such a body is written with JSON's ``NaN``/``Infinity`` tokens instead,
    which no decoder accepts, so the entry is dead-lettered (as msgpack bodies were)
    and redis-cli shows why.
    """
    plain = msgspec.to_builtins(body)
    if _non_finite(plain):
        return json.dumps(plain, separators=(",", ":"), allow_nan=True).encode()
    return raw


def _non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(_non_finite(v) for v in value)
    return False


def _decoder(cls: type[Schema]) -> msgspec.json.Decoder[Any]:
    dec = _decoders.get(cls)
    if dec is None:
        dec = _decoders[cls] = msgspec.json.Decoder(cls)
    return dec


def _legacy_decoder(cls: type[Schema]) -> msgspec.msgpack.Decoder[Any]:
    dec = _legacy_decoders.get(cls)
    if dec is None:
        dec = _legacy_decoders[cls] = msgspec.msgpack.Decoder(cls)
    return dec


def is_msgpack_body(raw: bytes | bytearray | memoryview) -> bool:
    """True for a body in the encoding before JSON: a msgpack map (fixmap 0x80-0x8f,
    map16 0xde, map32 0xdf). No JSON text starts with those bytes."""
    if not raw:
        return False
    first = raw[0]
    return 0x80 <= first <= 0x8F or first in (0xDE, 0xDF)


def _decode_body(cls: type[Schema], raw: bytes | bytearray | memoryview) -> Any:
    """The body as ``cls``: JSON, or a msgpack map written before the upgrade."""
    if is_msgpack_body(raw):
        return _legacy_decoder(cls).decode(raw)
    return _decoder(cls).decode(raw)


def _text(fields: dict[Any, Any], name: str) -> str:
    raw = fields.get(name.encode(), fields.get(name))
    if raw is None:
        raise DecodeError(f"missing field {name!r}")
    if isinstance(raw, bytes):
        try:
            return raw.decode()
        except UnicodeDecodeError as exc:
            raise DecodeError(f"field {name!r} is not UTF-8") from exc
    if isinstance(raw, str):
        return raw
    raise DecodeError(f"field {name!r} has type {type(raw).__name__}")


def _int(fields: dict[Any, Any], name: str, lo: int, hi: int) -> int:
    text = _text(fields, name)
    if not text.isascii() or not text.isdigit():
        raise DecodeError(f"field {name!r} is not a non-negative integer: {text[:40]!r}")
    value = int(text)
    if not lo <= value <= hi:
        raise DecodeError(f"field {name!r} out of range: {value}")
    return value


def _fast_decode(fields: dict[Any, Any], entry_id: str) -> Message[Any] | None:
    """The common case (bytes fields straight from redis-py) without the checks'
    detailed error messages; None sends the entry down the careful path."""
    try:
        return _fast_values(
            fields[b"type"],
            fields[b"v"],
            fields[b"src"],
            fields[b"ts"],
            fields.get(b"key", b""),
            fields[b"body"],
            entry_id,
        )
    except (KeyError, TypeError):
        return None


def _fast_values(
    type_b: Any, v_b: Any, src_b: Any, ts_b: Any, key_b: Any, body_b: Any, entry_id: str
) -> Message[Any] | None:
    """Hot path (every consumed entry): one lookup of the type gives the expected
    version and the decoder, and the message is built positionally (half the cost
    of keyword arguments). The checks are those of :func:`decode`; None means
    "take the careful path", which finds and names the problem (or decodes a body
    from before JSON: the hot path tries JSON only)."""
    try:
        version, dec = _wire[type_b]
        if v_b != version or not ts_b.isdigit():
            return None
        src = src_b.decode()
        key = key_b.decode()
        ts = int(ts_b)
        body = dec.decode(body_b)
    except (
        KeyError,
        TypeError,
        AttributeError,
        UnicodeDecodeError,
        msgspec.DecodeError,
        ValueError,
        OverflowError,
        RecursionError,
    ):
        return None
    if ts >= _TS_LIMIT or len(key) > _MAX_KEY:
        return None
    return Message(body, src, ts, key, entry_id)


_TS_LIMIT = 2**63
# wire type -> (version as sent, decoder); rebuilt when a schema registers later.
_wire: dict[bytes, tuple[bytes, msgspec.json.Decoder[Any]]] = {}


def _index_types() -> None:
    for name, cls in Schema.registry.items():
        _wire[name.encode()] = (str(cls.VERSION).encode(), _decoder(cls))


def decode(fields: dict[Any, Any], entry_id: str = "") -> Message[Any]:
    """Decode one stream entry or raise ``DecodeError`` with the reason."""
    if len(_wire) != len(Schema.registry):
        _index_types()
    fast = _fast_decode(fields, entry_id) if isinstance(fields, dict) else None
    if fast is not None:
        return fast
    if not isinstance(fields, dict):
        raise DecodeError(f"entry is {type(fields).__name__}, not a field map")
    type_name = _text(fields, "type")
    cls = schema_for(type_name)
    if cls is None:
        raise DecodeError(f"unknown type {type_name[:64]!r}")
    version = _int(fields, "v", 0, 1_000_000)
    if version > cls.VERSION:
        raise DecodeError(f"{type_name} v{version} is newer than supported v{cls.VERSION}")
    src = _text(fields, "src")
    ts = _int(fields, "ts", 0, 2**63 - 1)
    key = _text(fields, "key") if (b"key" in fields or "key" in fields) else ""
    if len(key) > _MAX_KEY:
        raise DecodeError("field 'key' too long")
    raw = fields.get(b"body", fields.get("body"))
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise DecodeError("missing or non-binary field 'body'")
    try:
        body = _decode_body(cls, raw)
    except msgspec.ValidationError as exc:
        raise DecodeError(f"{type_name}: invalid body: {exc}") from exc
    except (msgspec.DecodeError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise DecodeError(f"{type_name}: undecodable body: {exc}") from exc
    return Message(body=body, src=src, ts=ts, key=key, id=entry_id)


def fields_dict(flat: list[Any]) -> dict[Any, Any]:
    """``[name, value, name, value, ...]`` as Redis sends an entry, as a dict."""
    it = iter(flat)
    return dict(zip(it, it, strict=False))


def decode_flat(flat: list[Any], entry_id: str = "") -> Message[Any]:
    """Decode an entry in Redis' own flat form (the consumer's raw reads).

    Our publishers write the header in one order, so the common entry is checked by
    position with no dict built; anything else goes through :func:`decode`.
    """
    if len(_wire) != len(Schema.registry):
        _index_types()
    if (
        len(flat) == 12
        and flat[0] == b"type"
        and flat[2] == b"v"
        and flat[4] == b"src"
        and flat[6] == b"ts"
        and flat[8] == b"key"
        and flat[10] == b"body"
    ):
        fast = _fast_values(flat[1], flat[3], flat[5], flat[7], flat[9], flat[11], entry_id)
        if fast is not None:
            return fast
    if not isinstance(flat, list) or len(flat) % 2:
        raise DecodeError("entry is not a list of field/value pairs")
    return decode(fields_dict(flat), entry_id)


def loose_body(raw: bytes) -> Any:
    """Best-effort plain value of any body, for display: JSON (with NaN, as a body
    refused for one is written), else msgpack (the encoding before JSON, or foreign
    junk), else a note of its size."""
    try:
        return msgspec.json.decode(raw)
    except (msgspec.DecodeError, ValueError, RecursionError):
        pass
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        pass
    try:
        return msgpack.unpackb(raw, raw=False, strict_map_key=False)
    except (msgpack.UnpackException, ValueError, TypeError, RecursionError):
        return f"<{len(raw)} undecodable bytes>"


def decode_loose(fields: dict[Any, Any]) -> dict[str, Any]:
    """Best-effort readable view of any entry (for ``optbot tail`` and the DLQ)."""
    out: dict[str, Any] = {}
    for k, v in fields.items():
        name = k.decode(errors="replace") if isinstance(k, bytes) else str(k)
        if name == "body" and isinstance(v, bytes):
            out[name] = loose_body(v)
        elif isinstance(v, bytes):
            out[name] = v.decode(errors="replace")
        else:
            out[name] = v
    return out
