"""Loose entries for the dashboard: JSON bodies, msgpack ones from before JSON, junk."""

from __future__ import annotations

import msgspec

from services.monitor.convert import loose_entry
from shared.bus.dlq import dead_letter_fields
from shared.envelope import encode
from shared.schemas import ContractRef, Quote

QUOTE = Quote(contract=ContractRef(symbol="SPY"), bid=590.23, ask=590.25)
PLAIN = {"contract": {"symbol": "SPY"}, "bid": 590.23, "ask": 590.25}


def test_loose_entry_when_body_is_json_shows_its_fields() -> None:
    entry = loose_entry(b"1-0", encode(QUOTE, src="gw/1", key="SPY", ts=2_000_000_000_000))
    assert (entry.type, entry.key, entry.src, entry.ts) == ("quote", "SPY", "gw/1", 2000.0)
    assert entry.body == PLAIN


def test_loose_entry_when_body_predates_json_still_shows_its_fields() -> None:
    fields = {**encode(QUOTE, src="gw/1", key="SPY"), b"body": msgspec.msgpack.encode(QUOTE)}
    assert loose_entry(b"1-0", fields).body == PLAIN


def _dead(body: bytes) -> dict[bytes, bytes]:
    original = {**encode(QUOTE, src="gw/1", key="SPY"), b"body": body}
    return dead_letter_fields(
        reason="quote: refused",
        stream="md:ticks",
        entry_id="1-0",
        group="strategy",
        consumer="c1",
        fields=original,
    )


def test_loose_entry_when_dead_letter_keeps_the_original_body_readable() -> None:
    entry = loose_entry(b"2-0", _dead(encode(QUOTE, src="gw/1")[b"body"]))
    assert entry.type == "dead_letter" and entry.fields["orig.body"] == PLAIN
    junk = loose_entry(b"2-0", _dead(b'{"bid":-1'))
    assert junk.fields["orig.body"] == "<9 undecodable bytes>"
