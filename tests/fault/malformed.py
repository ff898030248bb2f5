"""Hypothesis strategies for stream entries no consumer may accept.

Each entry is one of: a header field missing, an unknown type, a future or non-numeric
version, a bad timestamp, an undecodable body (random bytes, broken or cut-off JSON),
a body of the stream's own type with one field broken (NaN, infinities, negative
sizes, huge numbers, wrong types, missing), or a well-formed message of a type that
does not belong on the stream. Bodies come in both encodings a consumer reads: JSON
(what we publish; Python's json writes NaN and unbounded integers, as a foreign
producer might) and msgpack (what we published before JSON). Every example
is checked against the real decoder and the stream's accepted types, so the suite
never injects an entry that a consumer would rightly act on (a valid order!).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.envelope import DecodeError, decode, encode
from shared.schemas import (
    AccountRefresh,
    AccountSnapshot,
    Bar,
    CandidatesSignal,
    ContractRef,
    Control,
    GatewayStatus,
    HistoryBars,
    HistoryRequest,
    IbError,
    OptionChain,
    OptionChainRequest,
    OrderCancel,
    OrderEvent,
    OrderModify,
    OrderNew,
    Quote,
    Schema,
    SentimentSignal,
    Subscribe,
    Unsubscribe,
)

Fields = dict[bytes, bytes]

# What the consumers of each stream accept (any group), and a body template of its main type.
ACCEPTS: dict[str, tuple[type[Schema], ...]] = {
    "md:ticks": (Quote,),
    "gw:status": (GatewayStatus, IbError),
    "gw:replies:market_data": (HistoryBars,),
    "gw:replies:strategy": (OptionChain,),
    "gw:commands": (Subscribe, Unsubscribe, OptionChainRequest, HistoryRequest, AccountRefresh),
    "orders:requests": (OrderNew, OrderCancel, OrderModify),
    "orders:events": (OrderEvent,),
    "md:signals": (Bar, SentimentSignal, CandidatesSignal),
    "sys:control": (Control,),
    "account": (AccountSnapshot,),
}
_FUZZ = {"symbol": "ZZFUZZ", "sec_type": "OPT", "expiry": "20301218", "strike": 1.0, "right": "C"}
TEMPLATES: dict[str, tuple[type[Schema], dict[str, Any]]] = {
    "md:ticks": (Quote, {"contract": _FUZZ, "bid": 1.0, "ask": 1.1, "bid_size": 1.0}),
    "gw:status": (GatewayStatus, {"state": "connected", "reason": "fuzz"}),
    "gw:replies:market_data": (
        HistoryBars,
        {"request_id": "fuzz", "symbol": "ZZFUZZ", "bars": []},
    ),
    "gw:replies:strategy": (
        OptionChain,
        {"request_id": "fuzz", "underlying": "ZZFUZZ", "contracts": []},
    ),
    "gw:commands": (Subscribe, {"contracts": [_FUZZ], "priority": 5}),
    "orders:requests": (
        OrderNew,
        {
            "client_order_id": "fuzz-1",
            "contract": _FUZZ,
            "action": "BUY",
            "quantity": 1,
            "limit_price": 1.0,
        },
    ),
    "orders:events": (
        OrderEvent,
        {
            "client_order_id": "fuzz-1",
            "kind": "fill",
            "contract": _FUZZ,
            "action": "BUY",
            "fill_qty": 1,
            "fill_price": 1.0,
            "filled_total": 1,
            "exec_id": "fuzz",
        },
    ),
    "md:signals": (
        Bar,
        {
            "symbol": "ZZFUZZ",
            "start_ns": 1,
            "interval_s": 60,
            "open": 1.0,
            "high": 1.0,
            "low": 1.0,
            "close": 1.0,
        },
    ),
    "sys:control": (Control, {"action": "halt", "who": "fuzz"}),
    "account": (
        AccountSnapshot,
        {"account": "DUFUZZ", "net_liquidation": 1.0, "cash": 1.0, "buying_power": 1.0},
    ),
}
# Bodies of other types, to put on streams where they do not belong.
FOREIGN: list[Schema] = [
    Quote(contract=ContractRef(symbol="ZZFUZZ")),
    GatewayStatus(state="connected"),  # type: ignore[arg-type]
    OrderCancel(client_order_id="fuzz-1"),
    Control(action="halt", who="fuzz"),  # type: ignore[arg-type]
    AccountRefresh(),
    OrderEvent(client_order_id="fuzz-1", kind="ack"),  # type: ignore[arg-type]
    Bar(symbol="ZZFUZZ", start_ns=1, interval_s=60, open=1, high=1, low=1, close=1),
]
BAD_VALUES = [
    math.nan,
    math.inf,
    -math.inf,
    -1,
    -1.0,
    -1e300,
    1e300,
    2**64 - 1,
    -(2**63),
    "text",
    "",
    None,
    [],
    {"x": 1},
    True,
    b"\xff",
]
HEADERS = (b"type", b"v", b"src", b"ts", b"body")


def _json(body: Any) -> bytes:
    """JSON as a careless producer writes it: NaN, Infinity, bytes as text."""
    return json.dumps(body, default=lambda b: b.decode("latin-1")).encode()


def _msgpack(body: Any) -> bytes:
    packed: bytes = msgpack.packb(body)
    return packed


ENCODINGS: tuple[Callable[[Any], bytes], ...] = (_json, _msgpack)
# Bodies no decoder takes for an object: cut off, not JSON at all, not an object.
JSON_JUNK = [b"", b"{", b'{"', b"[]", b"null", b"1", b'"quote"', b"{}}", b"{'a': 1}", b"NaN"]


def _envelope(type_name: str, body: bytes, v: bytes = b"1") -> Fields:
    return {
        b"type": type_name.encode(),
        b"v": v,
        b"src": b"fuzz/1",
        b"ts": str(time.time_ns()).encode(),
        b"key": b"fuzz",
        b"body": body,
    }


def _mutate(template: dict[str, Any], key: str, value: Any, drop: bool) -> dict[str, Any]:
    body = dict(template)
    if drop:
        body.pop(key, None)
    else:
        body[key] = value
    return body


def entries(stream: str) -> st.SearchStrategy[Fields]:
    """Malformed entries for ``stream`` (each rejected by every consumer of it)."""
    cls, template = TEMPLATES[stream]
    valid = st.sampled_from([enc(template) for enc in ENCODINGS])
    broken_body = st.builds(
        lambda enc, body: _envelope(cls.TYPE, enc(body)),
        st.sampled_from(ENCODINGS),
        st.builds(
            _mutate,
            st.just(template),
            st.sampled_from(sorted(template)),
            st.sampled_from(BAD_VALUES),
            st.booleans(),
        ),
    )
    missing = st.builds(
        lambda h, body: {k: v for k, v in _envelope(cls.TYPE, body).items() if k != h},
        st.sampled_from(HEADERS),
        valid,
    )
    unknown = st.builds(_envelope, st.text(min_size=1, max_size=40), valid)
    future = st.builds(
        lambda v, body: _envelope(cls.TYPE, body, str(v).encode()),
        st.integers(cls.VERSION + 1, 10**6),
        valid,
    )
    bad_version = st.builds(
        lambda v, body: _envelope(cls.TYPE, body, v),
        st.sampled_from([b"-1", b"x", b"1.5", b"", b"1e3"]),
        valid,
    )
    bad_ts = st.builds(
        lambda ts, body: {**_envelope(cls.TYPE, body), b"ts": ts},
        st.sampled_from([b"-5", b"abc", b"9" * 30, b""]),
        valid,
    )
    cut_json = st.integers(0, len(_json(template)) - 1).map(lambda n: _json(template)[:n])
    garbage = st.one_of(st.binary(max_size=64), st.sampled_from(JSON_JUNK), cut_json).map(
        lambda b: _envelope(cls.TYPE, b)
    )
    foreign = st.sampled_from([m for m in FOREIGN if not isinstance(m, ACCEPTS[stream])]).map(
        lambda m: encode(m, "fuzz/1", "fuzz")
    )
    return st.one_of(
        broken_body, missing, unknown, future, bad_version, bad_ts, garbage, foreign
    ).filter(lambda f: rejected(stream, f))


def rejected(stream: str, fields: Fields) -> bool:
    """True when a consumer of ``stream`` must dead-letter ``fields``."""
    try:
        msg = decode(fields)
    except DecodeError:
        return True
    return not isinstance(msg.body, ACCEPTS[stream])


def draw(stream: str, n: int) -> list[Fields]:
    """``n`` distinct malformed entries for ``stream``, reproducibly (derandomized)."""
    out: list[Fields] = []

    @settings(
        max_examples=n,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(entries(stream))
    def collect(fields: Fields) -> None:
        out.append(fields)

    collect()
    return out
