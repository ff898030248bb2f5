"""Envelope codec: lossless round trips, and one error type for every bad entry."""

from __future__ import annotations

import contextlib
import math

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.envelope import DecodeError, decode, decode_flat, decode_loose, encode
from shared.schemas import ContractRef, Quote, Schema
from tests.shared.samples import SAMPLES, SPY


def test_samples_cover_every_registered_type() -> None:
    assert {s.TYPE for s in SAMPLES} == set(Schema.registry)


@pytest.mark.parametrize("body", SAMPLES, ids=lambda b: b.TYPE)
def test_round_trip_when_valid_body_returns_equal_message(body: Schema) -> None:
    fields = encode(body, src="test/1", key="k", ts=123)
    msg = decode(fields, "1-0")
    assert msg.body == body
    assert (msg.type, msg.v, msg.src, msg.ts, msg.key, msg.id) == (
        body.TYPE,
        1,
        "test/1",
        123,
        "k",
        "1-0",
    )


def test_header_when_encoded_is_readable_text() -> None:
    fields = encode(SAMPLES[0], src="gateway_adapter/h-1", key="SPY", ts=5)
    assert fields[b"type"] == b"quote" and fields[b"v"] == b"1" and fields[b"key"] == b"SPY"
    assert decode_loose(fields)["body"]["bid"] == 500.01


prices = st.one_of(st.none(), st.floats(min_value=0, max_value=1e9, allow_nan=False))


@settings(max_examples=200, deadline=None)
@given(
    bid=prices,
    ask=prices,
    last=prices,
    size=st.one_of(st.none(), st.floats(0, 1e12)),
    ts=st.integers(0, 2**63 - 1),
    key=st.text(max_size=50),
)
def test_round_trip_when_any_valid_quote_is_lossless(
    bid: float | None, ask: float | None, last: float | None, size: float | None, ts: int, key: str
) -> None:
    body = Quote(contract=SPY, bid=bid, ask=ask, last=last, bid_size=size)
    msg = decode(encode(body, src="s", key=key, ts=ts))
    assert (msg.body, msg.ts, msg.key) == (body, ts, key)


def _fields(**overrides: object) -> dict[bytes, object]:
    fields: dict[bytes, object] = dict(encode(SAMPLES[0], src="s", key="SPY"))
    for k, v in overrides.items():
        if v is None:
            fields.pop(k.encode())
        else:
            fields[k.encode()] = v
    return fields


def _quote_body(**values: object) -> bytes:
    base = msgspec.to_builtins(Quote(contract=SPY))
    base.update(values)
    return msgspec.msgpack.encode(base)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (_fields(type=b"nope"), "unknown type"),
        (_fields(type=None), "missing field 'type'"),
        (_fields(v=b"2"), "newer than supported"),
        (_fields(v=b"x"), "not a non-negative integer"),
        (_fields(ts=b"-5"), "not a non-negative integer"),
        (_fields(body=b"\xc1\xff"), "undecodable body"),
        (_fields(body=None), "body"),
        (_fields(body=_quote_body(bid=math.nan)), "invalid body"),
        (_fields(body=_quote_body(ask=math.inf)), "invalid body"),
        (_fields(body=_quote_body(bid=-1.0)), "invalid body"),
        (_fields(body=_quote_body(bid_size=-3.0)), "invalid body"),
        (_fields(body=_quote_body(delta=7.0)), "invalid body"),
        (_fields(body=_quote_body(bid="cheap")), "invalid body"),
        (_fields(src=b"\xff\xfe"), "not UTF-8"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_decode_when_entry_is_bad_raises_decode_error_with_reason(
    fields: dict[bytes, object], reason: str
) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode(fields)


def test_decode_when_limit_order_has_no_price_raises_decode_error() -> None:
    body = msgspec.msgpack.encode(
        {
            "client_order_id": "x",
            "contract": {"symbol": "SPY"},
            "action": "BUY",
            "quantity": 1,
            "order_type": "LMT",
        }
    )
    fields = {b"type": b"order.new", b"v": b"1", b"src": b"s", b"ts": b"1", b"body": body}
    with pytest.raises(DecodeError, match="limit_price"):
        decode(fields)


field_values = st.one_of(st.binary(max_size=64), st.text(max_size=16), st.integers(), st.none())


@settings(max_examples=500, deadline=None)
@given(
    fields=st.dictionaries(
        st.sampled_from([b"type", b"v", b"src", b"ts", b"key", b"body", b"junk"]), field_values
    ),
    type_name=st.sampled_from([t.encode() for t in Schema.registry] + [b"quote", b"??"]),
    body=st.binary(max_size=256),
)
def test_decode_when_fields_are_arbitrary_raises_only_decode_error(
    fields: dict[bytes, object], type_name: bytes, body: bytes
) -> None:
    for candidate in (fields, {**fields, b"type": type_name, b"v": b"1", b"body": body}):
        with contextlib.suppress(DecodeError):
            decode(candidate)


@settings(max_examples=300, deadline=None)
@given(
    body=st.recursive(
        st.none()
        | st.booleans()
        | st.floats()
        | st.integers(-(2**63), 2**64 - 1)
        | st.text(max_size=8)
        | st.binary(max_size=8),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=6), children, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_decode_when_body_is_arbitrary_msgpack_raises_only_decode_error(body: object) -> None:
    raw = msgspec.msgpack.encode(body)
    for type_name in Schema.registry:
        fields = {b"type": type_name.encode(), b"v": b"1", b"src": b"s", b"ts": b"1", b"body": raw}
        try:
            msg = decode(fields)
        except DecodeError:
            continue
        assert isinstance(msg.body, Schema.registry[type_name])


def _flat(fields: dict[bytes, object]) -> list[object]:
    return [x for pair in fields.items() for x in pair]


def _outcome(decoder: object, fields: object) -> object:
    try:
        msg = decoder(fields, "1-0")  # type: ignore[operator]
    except DecodeError as exc:
        return ("error", exc.reason)
    return (msg.body, msg.src, msg.ts, msg.key, msg.id)


@pytest.mark.parametrize("body", SAMPLES, ids=lambda b: b.TYPE)
def test_decode_flat_when_entry_is_as_published_equals_decode(body: Schema) -> None:
    fields = dict(encode(body, src="svc/1", key="K"))
    assert _outcome(decode_flat, _flat(fields)) == _outcome(decode, fields)


@settings(max_examples=500, deadline=None)
@given(
    fields=st.dictionaries(
        st.sampled_from([b"type", b"v", b"src", b"ts", b"key", b"body", b"junk"]), field_values
    ),
    order=st.randoms(use_true_random=False),
)
def test_decode_flat_when_fields_are_arbitrary_agrees_with_decode(
    fields: dict[bytes, object], order: object
) -> None:
    # Same verdict and the same reason whatever the field order: the positional fast
    # path may only ever take entries the careful path would accept identically.
    published = {**dict(encode(SAMPLES[0], src="s", key="SPY")), **fields}
    items = list(published.items())
    order.shuffle(items)  # type: ignore[attr-defined]
    shuffled = dict(items)
    assert _outcome(decode_flat, _flat(shuffled)) == _outcome(decode, shuffled)


def test_decode_flat_when_not_pairs_raises_decode_error() -> None:
    with pytest.raises(DecodeError, match="pairs"):
        decode_flat([b"type", b"quote", b"v"])


def test_contract_key_when_option_is_readable() -> None:
    from tests.shared.samples import CALL

    assert CALL.key == "AAPL 20261218 250 C"
    assert ContractRef(symbol="VIX").key == "VIX"
