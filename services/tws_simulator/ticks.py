"""Tick encoding: pre-formatted tickPrice/tickSize/tickString/tickOptionComputation frames.

Frames are built with one f-string and one struct.pack each; a line only emits
fields that changed since it last sent them, as TWS does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .contracts import Instrument
from .greeks import Greeks
from .market import Market, Quote
from .options import OptionPricer, OptionQuote
from .protocol import prefix


@dataclass(frozen=True, slots=True)
class TickIds:
    """Tick type ids for live (1..13, 45) or delayed (66..83, 88) data."""

    bid: int
    ask: int
    last: int
    high: int
    low: int
    close: int
    bid_size: int
    ask_size: int
    last_size: int
    volume: int
    bid_opt: int
    ask_opt: int
    last_opt: int
    model_opt: int
    last_ts: int


LIVE = TickIds(1, 2, 4, 6, 7, 9, 0, 3, 5, 8, 10, 11, 12, 13, 45)
DELAYED = TickIds(66, 67, 68, 72, 73, 75, 69, 70, 71, 74, 80, 81, 82, 83, 88)


def tick_price(req_id: int, tick: int, price: float, size: int, attrib: int = 0) -> bytes:
    """tickPrice (msg 1, version 6); attrib bit 0 = canAutoExecute."""
    return prefix(f"1\x006\x00{req_id}\x00{tick}\x00{price}\x00{size}\x00{attrib}\x00".encode())


def tick_size(req_id: int, tick: int, size: int) -> bytes:
    """tickSize (msg 2, version 6)."""
    return prefix(f"2\x006\x00{req_id}\x00{tick}\x00{size}\x00".encode())


def tick_string(req_id: int, tick: int, value: str) -> bytes:
    """tickString (msg 46, version 6), e.g. lastTimestamp (45) in epoch seconds."""
    return prefix(f"46\x006\x00{req_id}\x00{tick}\x00{value}\x00".encode())


def tick_option(req_id: int, tick: int, g: Greeks, iv: float, price: float, und: float) -> bytes:
    """tickOptionComputation (msg 21, no version field at server version >= 156)."""
    return prefix(
        (
            f"21\x00{req_id}\x00{tick}\x001\x00{iv:.6f}\x00{g.delta:.6f}\x00{price}\x00"
            f"0\x00{g.gamma:.6f}\x00{g.vega:.6f}\x00{g.theta:.6f}\x00{und:.4f}\x00"
        ).encode()
    )


@dataclass(slots=True)
class Line:
    """One reqMktData subscription of one connection."""

    req_id: int
    inst: Instrument
    ids: TickIds
    snapshot: bool = False
    sent: dict[str, object] = field(default_factory=dict)


def _changed(line: Line, key: str, value: object) -> bool:
    if line.sent.get(key) == value:
        return False
    line.sent[key] = value
    return True


def quote_frames(
    line: Line, market: Market, pricer: OptionPricer, full: bool = False
) -> list[bytes]:
    """Frames for what changed on this line since its last emission (all when ``full``)."""
    if full:
        line.sent.clear()
    inst = line.inst
    if inst.is_option:
        oq = pricer.quote(inst)
        out = _book_frames(line, oq.quote, int(market.now()))
        out += _greek_frames(line, oq)
        return out
    if inst.sec_type == "IND":
        return _index_frames(line, market.quotes["VIX"])
    return _book_frames(line, market.quotes[inst.symbol], int(market.now()))


def _book_frames(line: Line, q: Quote, now: int) -> list[bytes]:
    ids, rid, out = line.ids, line.req_id, []
    if _changed(line, "bid", (q.bid, q.bid_size)):
        out.append(tick_price(rid, ids.bid, q.bid, q.bid_size, 1))
    if _changed(line, "ask", (q.ask, q.ask_size)):
        out.append(tick_price(rid, ids.ask, q.ask, q.ask_size, 1))
    if _changed(line, "last", (q.last, q.volume)):
        out.append(tick_price(rid, ids.last, q.last, q.last_size))
        out.append(tick_size(rid, ids.volume, q.volume))
        out.append(tick_string(rid, ids.last_ts, str(now)))
    out += _stats_frames(line, q)
    return out


def _stats_frames(line: Line, q: Quote) -> list[bytes]:
    ids, rid, out = line.ids, line.req_id, []
    if _changed(line, "high", q.high):
        out.append(tick_price(rid, ids.high, q.high, 0))
    if _changed(line, "low", q.low):
        out.append(tick_price(rid, ids.low, q.low, 0))
    if _changed(line, "close", q.close):
        out.append(tick_price(rid, ids.close, q.close, 0))
    return out


def _index_frames(line: Line, q: Quote) -> list[bytes]:
    """Indices such as VIX have last/close/high/low but no bid or ask."""
    out = []
    if _changed(line, "last", q.last):
        out.append(tick_price(line.req_id, line.ids.last, q.last, 0))
    return out + _stats_frames(line, q)


def _greek_frames(line: Line, oq: OptionQuote) -> list[bytes]:
    ids, rid, g, q = line.ids, line.req_id, oq.model, oq.quote
    if not _changed(line, "greeks", (round(g.price, 4), round(oq.underlying, 4))):
        return []
    return [
        tick_option(rid, ids.bid_opt, g, oq.bid_iv, q.bid, oq.underlying),
        tick_option(rid, ids.ask_opt, g, oq.ask_iv, q.ask, oq.underlying),
        tick_option(rid, ids.last_opt, g, g.iv, q.last, oq.underlying),
        tick_option(rid, ids.model_opt, g, g.iv, round(g.price, 4), oq.underlying),
    ]
