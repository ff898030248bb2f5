"""Value types of hashes and JSON fields that one service writes and another reads.

Why: a hash read by hand (``fields.get("state")``) turns a renamed field into no
data, silently. The writer builds these Structs and the reader decodes them, so a
renamed or missing field is a ``msgspec.ValidationError`` in the tests instead.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import msgspec

from shared.schemas import Direction, Sentiment

S = TypeVar("S", bound=msgspec.Struct)


class HashFields(msgspec.Struct, frozen=True, kw_only=True):
    """A hash of plain string fields (redis-cli readable): HSET from ``fields()``."""

    def fields(self) -> dict[str, str]:
        return {k: str(v) for k, v in msgspec.structs.asdict(self).items()}


def decode_fields(raw: dict[Any, Any], cls: type[S]) -> S | None:
    """The hash ``raw`` (bytes or str) as ``cls``; None when the hash is absent (empty).

    A hash that exists but lacks a field or holds a bad value raises
    ``msgspec.ValidationError``: the contract changed, never "no data".
    """
    if not raw:
        return None
    text = {_s(k): _s(v) for k, v in raw.items()}
    return msgspec.convert(text, cls, strict=False)


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


# --- md:sentiment, md:candidates (market_data) ---------------------------------------------


class SentimentHash(HashFields, frozen=True, kw_only=True):
    """``md:sentiment``: the state and why; the rule's inputs follow as extra fields."""

    state: Sentiment
    since: str
    reason: str
    data_type: str
    updated: str


class CandidateRow(msgspec.Struct, frozen=True, kw_only=True):
    """One row of ``md:candidates``' ``json`` field (the score's inputs follow it)."""

    symbol: str
    direction: Direction
    score: float


CANDIDATE_ROWS = msgspec.json.Decoder(list[CandidateRow])


class CandidatesHash(HashFields, frozen=True, kw_only=True):
    """``md:candidates``: ranked rows ``1`` … ``N`` follow as extra fields."""

    updated: str
    count: int
    data_type: str
    excluded: str  # JSON: symbol -> reason
    json: str  # JSON: list of CandidateRow with their inputs

    def rows(self) -> list[CandidateRow]:
        return CANDIDATE_ROWS.decode(self.json)


# --- strategy:pnl (strategy) -------------------------------------------------------------------


class PnlFields(HashFields, frozen=True, kw_only=True):
    """``strategy:pnl``: the ledger's figures as text (money as fixed decimals)."""

    starting_cash: str
    cash: str
    market_value: str
    equity: str
    realized: str
    unrealized: str
    commissions: str
    daily_pnl: str  # "" until the trading day's opening equity is known
    daily_pnl_basis: str
    stale_marks: str
    trading_day: str
    opening_equity: str
    equity_source: str
    daily_loss_limit: str
    premium_at_risk: str
    net_liquidation: str
    positions: str
    fills: str
    working_orders: str
    risk_state: str
    reconcile: str
    updated: str


class PositionRow(msgspec.Struct, frozen=True, kw_only=True):
    """One ``strategy:positions`` field (JSON), keyed by the contract's key."""

    symbol: str
    expiry: str
    strike: float | None
    right: str
    qty: int
    avg_price: str
    mark: str
    mark_stale: bool
    cost: str
    market_value: str
    unrealized: str
    realized: str
    commissions: str
    delta: float | str  # "" when no greeks
    opened: str
    entry_order: str
    simulated: bool


class WorkingOrderRow(msgspec.Struct, frozen=True, kw_only=True):
    """One ``strategy:orders`` field (JSON), keyed by client order id."""

    key: str
    action: str
    qty: int
    filled: int
    limit: float | None
    reprices: int
    acked: bool
    reduce_only: bool


class EquityPoint(msgspec.Struct, frozen=True, kw_only=True):
    """One ``strategy:equity`` list item (JSON): a point of the equity curve."""

    t: float
    equity: str
    realized: str
    unrealized: str


class BarRow(msgspec.Struct, frozen=True, kw_only=True):
    """One ``md:bars:{symbol}`` list item (JSON): the dashboard chart's compact bar."""

    t: int  # bar start, seconds since epoch
    o: float
    h: float
    l: float  # noqa: E741 - the chart's field name
    c: float
    v: float
    gap: bool


def to_json(row: msgspec.Struct) -> str:
    """A JSON value Struct as text, in the same form as ``json.dumps`` of its fields."""
    return json.dumps(msgspec.structs.asdict(row))
