"""Envelope codec: lossless round trips, and one error type for every bad entry."""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import subprocess

import msgspec
import pytest
import redis as syncredis
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.envelope import DecodeError, decode, decode_flat, decode_loose, encode, loose_body
from shared.redis_server import RedisHandle
from shared.schemas import (
    Action,
    ContractRef,
    OrderEvent,
    OrderEventKind,
    Quote,
    Schema,
    Sentiment,
    SentimentSignal,
)
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


def test_body_when_encoded_is_compact_json_of_the_schema() -> None:
    body = encode(SAMPLES[0], src="s")[b"body"]
    assert body.startswith(b'{"contract":{"symbol":"SPY"') and b"\n" not in body
    assert json.loads(body) == msgspec.to_builtins(SAMPLES[0])


def _legacy_fields(body: Schema, key: str = "k") -> dict[bytes, bytes]:
    """An entry as published before JSON: the same header, a msgpack body."""
    return {**encode(body, src="old/1", key=key, ts=7), b"body": msgspec.msgpack.encode(body)}


@pytest.mark.parametrize("body", SAMPLES, ids=lambda b: b.TYPE)
def test_decode_when_body_is_msgpack_from_before_json_returns_equal_message(body: Schema) -> None:
    fields = _legacy_fields(body)
    msg = decode(fields, "1-0")
    assert (msg.body, msg.src, msg.ts, msg.key) == (body, "old/1", 7, "k")
    assert _outcome(decode_flat, _flat(fields)) == _outcome(decode, fields)
    assert decode_loose(fields)["body"] == msgspec.to_builtins(body)


def test_decode_when_legacy_msgpack_body_is_bad_names_the_field() -> None:
    with pytest.raises(DecodeError, match=r"invalid body: .*\$\.bid"):
        decode(_fields(body=_quote_body(encoding="msgpack", bid=math.nan)))


@pytest.mark.parametrize(
    "body",
    [
        Quote(contract=SPY, bid=math.nan, ask=500.0),
        Quote(contract=SPY, ask=math.inf),
        OrderEvent(
            client_order_id="o1",
            kind=OrderEventKind.FILL,
            contract=SPY,
            action=Action.BUY,
            fill_qty=1,
            fill_price=-math.inf,
            filled_total=1,
        ),
        SentimentSignal(state=Sentiment.BULLISH, inputs={"vix": math.nan}),
    ],
    ids=["nan-bid", "inf-ask", "fill-price", "nested"],
)
def test_encode_when_float_is_not_finite_is_dead_lettered_never_read_as_missing(
    body: Schema,
) -> None:
    # msgspec would write null, read back as "missing": a fill would lose its price.
    fields = encode(body, src="s")
    assert b"NaN" in fields[b"body"] or b"Infinity" in fields[b"body"]
    with pytest.raises(DecodeError, match="undecodable body"):
        decode(fields)
    assert _outcome(decode_flat, _flat(fields)) == _outcome(decode, fields)
    assert isinstance(decode_loose(fields)["body"], dict)


def test_encode_when_text_says_null_keeps_the_fast_encoding() -> None:
    body = Quote(contract=ContractRef(symbol="null"), bid=None, ask=1.0)
    fields = encode(body, src="s")
    assert fields[b"body"] == msgspec.json.encode(body) and decode(fields).body == body


def test_redis_cli_when_reading_ticks_shows_the_body_as_json(redis_server: RedisHandle) -> None:
    client = syncredis.Redis.from_url(redis_server.url)
    client.delete("md:ticks")
    for body in SAMPLES[:2]:
        client.xadd("md:ticks", encode(body, src="gateway_adapter/h-1", key="SPY"))  # type: ignore[arg-type]
    client.close()
    cli = shutil.which("redis-cli")
    if cli is None:
        pytest.fail("no redis-cli on PATH (Debian: apt-get install redis-tools)")
    proc = subprocess.run(
        [cli, "-u", redis_server.url, "XREVRANGE", "md:ticks", "+", "-", "COUNT", "5"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    lines = proc.stdout.splitlines()
    bodies = [json.loads(line) for line in lines if line.startswith("{")]
    assert bodies == [msgspec.to_builtins(b) for b in reversed(SAMPLES[:2])]
    assert '"contract":{"symbol":"SPY"' in proc.stdout and '"bid":500.01' in proc.stdout
    assert lines[1:7] == ["type", "quote", "v", "1", "src", "gateway_adapter/h-1"]


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


def _quote_body(encoding: str = "json", **values: object) -> bytes:
    """A quote body with some values forced, in JSON (Python's, which writes NaN and
    Infinity as other producers might) or in msgpack (the encoding before JSON)."""
    base = msgspec.to_builtins(Quote(contract=SPY))
    base.update(values)
    if encoding == "msgpack":
        return msgspec.msgpack.encode(base)
    return json.dumps(base).encode()


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
        (_fields(body=_quote_body(bid=math.nan)), "undecodable body"),
        (_fields(body=_quote_body(ask=math.inf)), "undecodable body"),
        (_fields(body=_quote_body(bid=1.0).replace(b"1.0", b"1e400")), "invalid body"),
        (_fields(body=_quote_body("msgpack", bid=math.nan)), "invalid body"),
        (_fields(body=_quote_body("msgpack", ask=math.inf)), "invalid body"),
        (_fields(body=_quote_body("msgpack", bid=-1.0)), "invalid body"),
        (_fields(body=_quote_body(contract={"symbol": "SPY", "con_id": 2**64})), "invalid body"),
        (_fields(body=b'{"contract":{"symbol":"SPY"},"bid":'), "undecodable body"),
        (_fields(body=b'{"contract":{"symbol":"\\ud800"}}'), "undecodable body"),
        (_fields(body=b'{"contract":{"symbol":"\xff"}}'), "undecodable body"),
        (_fields(body=b"[]"), "invalid body"),
        (_fields(body=b""), "undecodable body"),
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


@pytest.mark.parametrize("codec", [msgspec.json, msgspec.msgpack], ids=["json", "msgpack"])
def test_decode_when_limit_order_has_no_price_raises_decode_error(codec: object) -> None:
    body = codec.encode(  # type: ignore[attr-defined]
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


plain_values = st.recursive(
    st.none()
    | st.booleans()
    | st.floats()
    | st.integers(-(2**63), 2**64 - 1)
    | st.text(max_size=8)
    | st.binary(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(body=plain_values)
def test_decode_when_body_is_arbitrary_msgpack_raises_only_decode_error(body: object) -> None:
    _only_decode_errors(msgspec.msgpack.encode(body))


@settings(max_examples=300, deadline=None)
@given(
    body=plain_values,
    sample=st.sampled_from(SAMPLES),
    pick=st.integers(0, 100),
    big=st.integers(-(2**80), 2**80),
    cut=st.integers(0, 400),
)
def test_decode_when_body_is_arbitrary_json_raises_only_decode_error(
    body: object, sample: Schema, pick: int, big: int, cut: int
) -> None:
    # Python's json writes NaN/Infinity and integers of any width, as a foreign producer
    # might; a valid body with one field replaced comes closest to being accepted.
    valid = msgspec.to_builtins(sample)
    broken = {**valid, sorted(valid)[pick % len(valid)]: body} if valid else body
    for value in (body, broken):
        text = json.dumps(value, default=lambda b: b.decode("latin-1")).encode()
        for raw in (text, text[:cut], text.replace(b"0", str(big).encode())):
            _only_decode_errors(raw)
            loose_body(raw)  # display never raises, whatever the bytes


def _only_decode_errors(raw: bytes) -> None:
    """Every registered type either decodes ``raw`` into its own class or says why not."""
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
