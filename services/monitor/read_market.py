"""Market reads: latest quotes (``md:last:{KEY}``), sentiment, candidates, bars."""

from __future__ import annotations

import json
import time
from typing import Any, TypeVar

import msgspec
import redis.asyncio as aioredis

from services.monitor import models as m
from services.monitor.convert import epoch_s, num, price, str_map, text
from shared.contract import MD_CANDIDATES, MD_SENTIMENT, bars_key, last_quote_key
from shared.contract.values import CandidateRow, CandidatesHash, SentimentHash, decode_fields
from shared.logs import get_logger
from shared.schemas import DataType

log = get_logger("optbot.monitor.read_market")
H = TypeVar("H", bound=msgspec.Struct)
INDEX_KEYS = ("SPY", "QQQ", "VIX")
_GREEKS = ("iv", "delta", "gamma", "vega", "theta")


def _data_type(raw: str) -> DataType | None:
    try:
        return DataType(raw)
    except ValueError:
        return None


def quote_from_hash(key: str, fields: dict[str, str], now: float, stale_s: float) -> m.Quote:
    """One ``md:last`` hash as a Quote; an empty hash is a quote with nothing known."""
    if not fields:
        return m.Quote(key=key)
    last, mark, close = (
        price(fields.get("last")),
        price(fields.get("mark")),
        price(fields.get("close")),
    )
    shown = last or mark or close
    change = shown - close if shown is not None and close is not None else None
    updated = epoch_s(fields.get("updated"))
    age = max(0.0, now - updated) if updated is not None else None
    return m.Quote(
        key=key,
        bid=price(fields.get("bid")),
        ask=price(fields.get("ask")),
        last=last,
        close=close,
        mark=mark,
        price=shown,
        change=change,
        change_pct=change / close * 100 if change is not None and close else None,
        volume=num(fields.get("volume")),
        und_price=price(fields.get("und_price")),
        data_type=_data_type(fields.get("data_type", "")),
        updated=updated,
        age_s=age,
        stale=age is None or age > stale_s or shown is None,
        **{g: num(fields.get(g)) for g in _GREEKS},
    )


async def quotes(redis: aioredis.Redis, keys: list[str], stale_s: float) -> m.Quotes:
    """Latest quotes of ``keys`` in one round trip, in the order asked."""
    async with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hgetall(last_quote_key(key))
        rows: list[Any] = await pipe.execute()
    now = time.time()
    out = [quote_from_hash(k, str_map(r), now, stale_s) for k, r in zip(keys, rows, strict=True)]
    return m.Quotes(now=now, stale_after_s=stale_s, quotes=out)


def _head(raw: dict[Any, Any], cls: type[H], key: str) -> H | None:
    """A market_data hash as the contract's Struct; None while absent, and (logged)
    when it no longer matches the contract: the panel shows nothing, not half a hash."""
    try:
        return decode_fields(raw, cls)
    except msgspec.ValidationError as exc:
        log.error("contract_hash_unreadable", key=key, error=str(exc))
        return None


async def sentiment(redis: aioredis.Redis) -> m.Sentiment:
    raw: Any = await redis.hgetall(MD_SENTIMENT)
    head = _head(raw, SentimentHash, MD_SENTIMENT)
    if head is None:
        return m.Sentiment()
    meta = SentimentHash.__struct_fields__
    inputs = {k: v for k, r in str_map(raw).items() if k not in meta if (v := num(r)) is not None}
    return m.Sentiment(
        state=head.state.value,
        since=head.since,
        reason=head.reason,
        data_type=head.data_type,
        updated=head.updated,
        inputs=inputs,
    )


def _inputs(row: Any) -> dict[str, float]:
    """The score's inputs: a candidate row's numeric fields beyond CandidateRow's."""
    if not isinstance(row, dict):
        return {}
    return {
        k: v
        for k, raw in row.items()
        if k not in CandidateRow.__struct_fields__
        if isinstance(raw, int | float) and (v := num(raw)) is not None
    }


async def candidates(redis: aioredis.Redis) -> m.Candidates:
    head = _head(await redis.hgetall(MD_CANDIDATES), CandidatesHash, MD_CANDIDATES)
    if head is None:
        return m.Candidates()
    try:
        rows, extras = head.rows(), json.loads(head.json)
        excluded = json.loads(head.excluded)
    except (msgspec.DecodeError, ValueError) as exc:
        log.error("contract_hash_unreadable", key=MD_CANDIDATES, error=str(exc))
        return m.Candidates(updated=head.updated, data_type=head.data_type)
    parsed = [
        m.Candidate(symbol=r.symbol, direction=r.direction.value, score=r.score, inputs=_inputs(x))
        for r, x in zip(rows, extras, strict=True)
    ]
    return m.Candidates(
        updated=head.updated,
        data_type=head.data_type,
        candidates=parsed,
        excluded=excluded if isinstance(excluded, dict) else {},
    )


def _json(raw: str, default: Any) -> Any:
    try:
        return json.loads(raw) if raw else default
    except ValueError:
        return default


def _bar(raw: Any) -> m.BarPoint | None:
    row = _json(text(raw), None)
    if not isinstance(row, dict):
        return None
    o, h, low, c = (num(row.get(k)) for k in ("o", "h", "l", "c"))
    t = num(row.get("t"))
    if None in (o, h, low, c, t):
        return None
    return m.BarPoint(
        t=int(t or 0),
        o=o or 0.0,
        h=h or 0.0,
        l=low or 0.0,
        c=c or 0.0,
        v=num(row.get("v")) or 0.0,
        gap=bool(row.get("gap")),
    )


async def bars(redis: aioredis.Redis, symbol: str, limit: int, stale_s: float) -> m.Bars:
    raw: list[Any] = await redis.lrange(bars_key(symbol), -limit, -1)
    points = [b for b in map(_bar, raw) if b is not None]
    latest = (await quotes(redis, [symbol], stale_s)).quotes[0]
    return m.Bars(symbol=symbol, bars=points, quote=latest if latest.updated else None)
