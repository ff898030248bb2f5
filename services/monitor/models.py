"""Response models of the REST API; the dashboard renders exactly these shapes.

Missing market values are ``None`` (shown as "—"), never -1 or NaN. Timestamps are
seconds since the epoch (UTC, float); ages are computed by the server so a
browser's clock skew cannot make fresh data look stale.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from shared.schemas import ConnState, DataType, RiskState

UNKNOWN: Literal["UNKNOWN"] = (
    "UNKNOWN"  # no readable risk state recorded yet (a display value, not a state)
)


class Health(BaseModel):
    status: str = Field(default="ok", description="always ok while the process serves requests")


class Readiness(BaseModel):
    ready: bool
    redis: bool = Field(description="Redis answered a PING")
    quote_age_s: float | None = Field(default=None, description="age of the newest quote")
    reasons: list[str] = Field(default_factory=list, description="why not ready")


class Quote(BaseModel):
    key: str = Field(description="contract key: AAPL, or AAPL 20261218 250 C")
    bid: float | None = None
    ask: float | None = None
    last: float | None = None
    close: float | None = Field(default=None, description="previous close")
    mark: float | None = None
    price: float | None = Field(default=None, description="last, else mark, else close")
    change: float | None = Field(default=None, description="price - previous close")
    change_pct: float | None = None
    volume: float | None = None
    iv: float | None = None
    delta: float | None = None
    gamma: float | None = None
    vega: float | None = None
    theta: float | None = None
    und_price: float | None = None
    data_type: DataType | None = None
    updated: float | None = Field(default=None, description="when the adapter wrote it (epoch s)")
    age_s: float | None = None
    stale: bool = Field(default=True, description="no quote, or older than OPTBOT_MD_STALE_S")


class Quotes(BaseModel):
    now: float
    stale_after_s: float
    quotes: list[Quote]


class Sentiment(BaseModel):
    state: str | None = Field(
        default=None, description="BULLISH, NEUTRAL, BEARISH; None while warming"
    )
    since: str = ""
    reason: str = ""
    data_type: str = ""
    updated: str = ""
    inputs: dict[str, float] = Field(default_factory=dict)


class Candidate(BaseModel):
    symbol: str
    direction: str
    score: float
    inputs: dict[str, float] = Field(default_factory=dict)


class Candidates(BaseModel):
    updated: str = ""
    data_type: str = ""
    candidates: list[Candidate] = Field(default_factory=list)
    excluded: dict[str, Any] = Field(default_factory=dict, description="symbol -> why excluded")


class BarPoint(BaseModel):
    t: int = Field(description="bar start, epoch seconds")
    o: float
    h: float
    l: float  # noqa: E741 - the wire name market_data writes
    c: float
    v: float = 0.0
    gap: bool = False


class Bars(BaseModel):
    symbol: str
    bars: list[BarPoint]
    quote: Quote | None = Field(default=None, description="latest quote, to extend the chart live")


class Service(BaseModel):
    name: str
    alive: bool
    pid: str = ""
    uptime_s: float = 0.0
    heartbeat_age_s: float = 0.0
    lag: int = 0
    state: str = ""


class Gateway(BaseModel):
    state: ConnState | None = Field(default=None, description="None: the adapter never reported")
    reason: str = ""
    client_id: int | None = None
    server_version: int | None = None
    data_type: DataType | None = None
    account: str = ""
    instance: str = ""
    since: float | None = None


class Risk(BaseModel):
    state: RiskState | Literal["UNKNOWN"]
    why: str = ""
    who: str = ""
    since: float | None = None


class Status(BaseModel):
    now: float
    mode: str
    version: str
    redis: bool
    controls_enabled: bool = Field(description="a control token is configured (never shown)")
    gateway: Gateway
    risk: Risk
    services: list[Service]


class Group(BaseModel):
    name: str
    consumers: int = 0
    pending: int = 0
    lag: int | None = Field(default=None, description="entries not yet delivered to the group")
    last_delivered: str = ""


class StreamInfo(BaseModel):
    name: str
    length: int
    pending: int
    groups: list[Group]


class Entry(BaseModel):
    """A stream entry shown loosely (DLQ, decisions): header fields plus body."""

    id: str
    ts: float | None = None
    type: str = ""
    src: str = ""
    key: str = ""
    body: Any = None
    fields: dict[str, Any] = Field(default_factory=dict, description="other fields")


class DeadLetters(BaseModel):
    count: int
    latest: list[Entry]


class IbError(BaseModel):
    id: str
    ts: float
    code: int
    message: str
    symbol: str = ""
    severity: str = "error"


class Alert(BaseModel):
    id: str
    ts: float
    code: str
    severity: str
    message: str
    source: str = ""


class AlertRow(BaseModel):
    """One sys:alerts entry with its delivery per channel (channel id -> status)."""

    id: str
    ts: float
    code: str
    key: str
    state: str  # open, closed, event
    severity: str
    message: str
    source: str = ""
    opened_at: float | None = None
    details: dict[str, str] = {}
    delivery: dict[str, str] = {}


class ChannelHealth(BaseModel):
    """A notifier channel by id (never its URL) and how delivery goes."""

    id: str
    state: str
    sent: int = 0
    failures: int = 0
    queued: int = 0
    last_error: str = ""


class AlertsPanel(BaseModel):
    now: float
    open: list[AlertRow]
    history: list[AlertRow]
    channels: list[ChannelHealth]


class TestAlertResult(BaseModel):
    entry_id: str
    key: str


class System(BaseModel):
    now: float
    redis: dict[str, str]
    streams: list[StreamInfo]
    dlq: DeadLetters
    ib_errors: list[IbError]
    alerts: list[Alert] = Field(default_factory=list, description="sys:alerts, newest first")


class OrderEvent(BaseModel):
    id: str
    ts: float
    client_order_id: str
    kind: str
    contract: str = ""
    action: str = ""
    fill_qty: int = 0
    fill_price: float | None = None
    commission: float = 0.0
    filled_total: int = 0
    remaining: int = 0
    reason: str = ""
    simulated: bool = True


class OrderRequest(BaseModel):
    id: str
    ts: float
    type: str
    client_order_id: str
    contract: str = ""
    action: str = ""
    quantity: int = 0
    order_type: str = ""
    limit_price: float | None = None
    reason: str = ""


class Orders(BaseModel):
    requests: list[OrderRequest] = Field(description="newest first")
    events: list[OrderEvent] = Field(description="newest first")
    fills: list[OrderEvent] = Field(description="fills and partials, newest first")


class Position(BaseModel):
    contract: str
    symbol: str
    sec_type: str
    quantity: int
    avg_cost: float = Field(
        description="average cost per contract (price x multiplier, e.g. 422.00 for an "
        "option bought at 4.22), as IB's positions report it, whichever the source"
    )
    mark: float | None = Field(default=None, description="per share, as quoted")
    mark_stale: bool = Field(
        default=False, description="no fresh two-sided quote behind the mark right now"
    )
    unrealized_pnl: float | None = None
    delta: float | None = None
    gamma: float | None = None
    vega: float | None = None
    theta: float | None = None
    iv: float | None = None


class EquityPoint(BaseModel):
    ts: float
    net_liquidation: float


class Account(BaseModel):
    account: str = ""
    currency: str = "USD"
    net_liquidation: float | None = None
    cash: float | None = None
    buying_power: float | None = None
    day_pnl: float | None = None
    unrealized_pnl: float | None = None
    realized_pnl: float | None = None
    commissions: float | None = None
    opening_equity: float | None = Field(
        default=None,
        description="the trading day's opening equity: the base of sizing and every limit",
    )
    equity_source: str = Field(
        default="", description="broker (the traded book's net liquidation) or ledger (fallback)"
    )
    trading_day: str = Field(default="", description="New York trading day (YYYY-MM-DD)")
    daily_loss_limit: float | None = None
    stale_marks: list[str] = Field(
        default_factory=list, description="positions whose value rests on a stale mark"
    )
    updated: float | None = None
    source: str = Field(
        default="", description="strategy ledger (strategy:*) or broker snapshot (account)"
    )
    positions: list[Position] = Field(default_factory=list)
    equity: list[EquityPoint] = Field(default_factory=list, description="oldest first")


class Decision(BaseModel):
    id: str
    ts: float
    cycle: str = ""
    kind: str = Field(description="entry, exit, reprice, cancel, risk")
    outcome: str = Field(description="taken, skipped, denied")
    reason: str = ""
    symbol: str = ""
    direction: str = ""
    contract: str = ""
    quantity: int = 0
    limit_price: float | None = None
    client_order_id: str = ""
    inputs: dict[str, float] = Field(default_factory=dict)


class Decisions(BaseModel):
    stream: str
    decisions: list[Decision] = Field(description="newest first")


class ControlRequest(BaseModel):
    why: str = Field(default="", max_length=500, description="reason, kept with the event")
    who: str = Field(default="", max_length=64, description="operator name (default: dashboard)")


class FlattenRequest(ControlRequest):
    target: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9.]+( [0-9]{8} [0-9.]+ [CP])?$",
        description="contract key of the position to close",
    )


class ControlResult(BaseModel):
    """A control as the strategy applied it (flatten: as it was sent to the strategy)."""

    action: str
    state: RiskState | None = Field(
        default=None, description="risk state after the strategy applied it (None: flatten)"
    )
    previous: RiskState | None = Field(default=None, description="risk state before")
    changed: bool = Field(default=False, description="the state changed (else it already held)")
    who: str
    why: str
    target: str = ""
    event_id: str = Field(description="the request's sys:control entry id")
    applied_id: str = Field(default="", description="the strategy's risk.state entry id")
    since: float = Field(description="since when the state holds (flatten: when it was sent)")


class Problem(BaseModel):
    detail: str


class Market(BaseModel):
    sentiment: Sentiment
    candidates: Candidates


class RoundTrip(BaseModel):
    """One position from flat back to flat (``shared.performance``, as the report)."""

    contract: str
    direction: str = Field(description="long or short")
    quantity: int = Field(description="contracts opened over the trip")
    entry_ts: float
    exit_ts: float
    entry_price: float = Field(description="average over the opening fills, per share")
    exit_price: float = Field(description="average over the closing fills, per share")
    commissions: float
    pnl: float = Field(description="realized less every fill's commission")
    exit_reason: str = Field(description="the closing order's reason")


class Performance(BaseModel):
    """The New York trading day's round trips and booked P&L, from the fills on
    ``orders:events`` (the same code as the backtest report)."""

    trading_day: str = Field(description="New York date, YYYY-MM-DD")
    round_trips: int
    wins: int
    losses: int
    win_rate: float | None = Field(description="wins / round trips; null without one")
    avg_win: float | None
    avg_loss: float | None
    realized_pnl: float = Field(description="realized by today's fills, before commissions")
    commissions: float = Field(description="commissions of today's fills")
    net_pnl: float = Field(description="realized_pnl - commissions")
    max_drawdown: float = Field(description="largest fall of today's net realized P&L, >= 0")
    fills: int = Field(description="today's fills and expiry settlements")
    open_positions: int = Field(description="contracts with an open position, by the fills")
    trades: list[RoundTrip] = Field(description="today's round trips, newest first")
