"""Typed bodies of every message on the bus, in one place.

Bodies are msgspec Structs encoded as JSON objects: msgspec validates types and
ranges while decoding (NaN, infinities and negative sizes are rejected there),
which keeps the hot path fast and the checks in one declaration. JSON integers have
no width, so every int field is bounded (``Int64`` at least), as msgpack's were.
Every class names its wire ``type`` and schema version ``v``; a consumer that gets
a newer version than it knows sends the entry to the dead-letter stream.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

import msgspec

# Finite ranges: constrained floats reject NaN and +/-inf while decoding.
Price = Annotated[float, msgspec.Meta(ge=0.0, le=1e9)]
Money = Annotated[float, msgspec.Meta(ge=-1e12, le=1e12)]
Ratio = Annotated[float, msgspec.Meta(ge=-1e6, le=1e6)]
Size = Annotated[float, msgspec.Meta(ge=0.0, le=1e12)]
Delta = Annotated[float, msgspec.Meta(ge=-1.0, le=1.0)]
Vol = Annotated[float, msgspec.Meta(ge=0.0, le=100.0)]
Qty = Annotated[int, msgspec.Meta(ge=-10_000_000, le=10_000_000)]
PosQty = Annotated[int, msgspec.Meta(gt=0, le=10_000_000)]
TsNs = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
UInt63 = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
Symbol = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Text = Annotated[str, msgspec.Meta(max_length=4096)]


class DataType(StrEnum):
    """IB market-data types (reqMarketDataType 1-4), on every quote and in the settings."""

    LIVE = "live"
    FROZEN = "frozen"
    DELAYED = "delayed"
    DELAYED_FROZEN = "delayed_frozen"


class Regime(StrEnum):
    """Price regimes of the simulated market (``OPTBOT_SIM_REGIME``, its ``regime`` fault)."""

    TRENDING_UP = "trending_up"
    TRENDING_DOWN = "trending_down"
    CHOPPY = "choppy"


class SecType(StrEnum):
    STK = "STK"
    IND = "IND"
    OPT = "OPT"


class Right(StrEnum):
    CALL = "C"
    PUT = "P"


class Schema(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """Base of all bodies; subclasses register their wire type and version."""

    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1
    registry: ClassVar[dict[str, type[Schema]]] = {}

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)  # type: ignore[arg-type]
        if cls.TYPE:
            if cls.TYPE in Schema.registry:
                raise TypeError(f"duplicate message type {cls.TYPE!r}")
            Schema.registry[cls.TYPE] = cls


# --- md:ticks ------------------------------------------------------------------


class ContractRef(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """What identifies a contract on the bus; options add expiry/strike/right."""

    symbol: Symbol
    sec_type: SecType = SecType.STK
    con_id: UInt63 = 0
    exchange: str = "SMART"
    currency: str = "USD"
    expiry: str = ""
    strike: Price | None = None
    right: Right | None = None
    multiplier: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 1

    @property
    def key(self) -> str:
        """Stable readable key: ``AAPL`` or ``AAPL 20261218 250 C``."""
        if self.sec_type is SecType.OPT:
            strike = f"{self.strike:g}" if self.strike is not None else "?"
            right = self.right.value if self.right else "?"
            return f"{self.symbol} {self.expiry} {strike} {right}"
        return self.symbol


class Quote(Schema, frozen=True, kw_only=True):
    """A sanitized quote: missing values are None, never -1 or NaN."""

    TYPE: ClassVar[str] = "quote"
    contract: ContractRef
    bid: Price | None = None
    ask: Price | None = None
    last: Price | None = None
    close: Price | None = None
    mark: Price | None = None
    bid_size: Size | None = None
    ask_size: Size | None = None
    last_size: Size | None = None
    volume: Size | None = None
    iv: Vol | None = None
    delta: Delta | None = None
    gamma: Annotated[float, msgspec.Meta(ge=0.0, le=1e6)] | None = None
    vega: Ratio | None = None
    theta: Ratio | None = None
    und_price: Price | None = None
    data_type: DataType = DataType.LIVE
    ib_ts: TsNs = 0


# --- md:signals ----------------------------------------------------------------


class Sentiment(StrEnum):
    BULLISH = "BULLISH"
    NEUTRAL = "NEUTRAL"
    BEARISH = "BEARISH"


class Direction(StrEnum):
    LONG = "long"
    SHORT = "short"


class Bar(Schema, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "bar"
    symbol: Symbol
    start_ns: TsNs
    interval_s: Annotated[int, msgspec.Meta(gt=0, le=86_400 * 7)]
    open: Price
    high: Price
    low: Price
    close: Price
    volume: Size = 0.0
    gap: bool = False
    data_type: DataType = DataType.LIVE


class SentimentSignal(Schema, frozen=True, kw_only=True):
    """A sentiment change, with the inputs that produced it (so the UI can say why)."""

    TYPE: ClassVar[str] = "sentiment"
    state: Sentiment
    previous: Sentiment | None = None
    inputs: dict[str, Money] = {}
    reason: Text = ""
    data_type: DataType = DataType.LIVE


class Candidate(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    symbol: Symbol
    direction: Direction
    score: Ratio
    inputs: dict[str, Money] = {}


class CandidatesSignal(Schema, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "candidates"
    candidates: list[Candidate]
    data_type: DataType = DataType.LIVE


# --- gw:commands ---------------------------------------------------------------


class Subscribe(Schema, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "cmd.subscribe"
    contracts: list[ContractRef]
    priority: Annotated[int, msgspec.Meta(ge=0, le=10)] = 5
    requester: str = ""


class Unsubscribe(Schema, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "cmd.unsubscribe"
    contracts: list[ContractRef]
    requester: str = ""


class OptionChainRequest(Schema, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "cmd.option_chain"
    request_id: Symbol
    underlying: Symbol
    min_dte: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 14
    max_dte: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 45
    moneyness: Annotated[float, msgspec.Meta(gt=0.0, le=1.0)] = 0.10
    # How far in the money a strike may be (fraction of spot); None: ``moneyness`` on
    # both sides. A buyer of 0.35-0.50 delta wants out-of-the-money strikes only.
    itm_moneyness: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] | None = None
    max_contracts: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 0  # 0: the gateway's cap
    right: Right | None = None
    subscribe: bool = True
    reply_to: str = ""
    requester: str = ""  # owner of the chain's lines (cmd.unsubscribe with it releases them)


class HistoryRequest(Schema, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "cmd.history"
    request_id: Symbol
    contract: ContractRef
    duration: Annotated[str, msgspec.Meta(max_length=32)] = "1 D"
    bar_size: Annotated[str, msgspec.Meta(max_length=32)] = "1 min"
    reply_to: str = ""
    requester: str = ""  # the service the reply goes to (gw:replies:{requester})


class AccountRefresh(Schema, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "cmd.account_refresh"
    request_id: str = ""


NO_CONTRACT_IN_WINDOW = "no contract in the window"  # an OptionChain error that is no fault


class OptionChain(Schema, frozen=True, kw_only=True):
    """Reply to ``cmd.option_chain``: the qualified contracts in the window."""

    TYPE: ClassVar[str] = "option_chain"
    request_id: Symbol
    underlying: Symbol
    contracts: list[ContractRef]
    error: Text = ""


class HistoryBars(Schema, frozen=True, kw_only=True):
    """Reply to ``cmd.history``."""

    TYPE: ClassVar[str] = "history"
    request_id: Symbol
    symbol: Symbol
    bars: list[Bar]
    error: Text = ""


# --- gw:status -----------------------------------------------------------------


class ConnState(StrEnum):
    STANDBY = "standby"
    CONNECTING = "connecting"
    SYNCING = "syncing"  # logged on, reconciling executions/orders/positions: no new entries
    CONNECTED = "connected"
    DEGRADED = "degraded"
    DISCONNECTED = "disconnected"


class GatewayStatus(Schema, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "status"
    state: ConnState
    reason: Text = ""
    client_id: UInt63 = 0
    server_version: UInt63 = 0
    data_type: DataType = DataType.LIVE
    account: str = ""
    instance: str = ""


class IbError(Schema, frozen=True, kw_only=True):
    """An IB error or warning (code and text as IB sent them).

    The adapter also uses it for refusals it decides itself (line budget, ambiguous
    contract, routing refused); ``severity`` then says ``refused`` or ``evicted``.
    """

    TYPE: ClassVar[str] = "ib.error"
    code: Int64
    message: Text
    req_id: Int64 = -1
    symbol: str = ""
    severity: Annotated[str, msgspec.Meta(max_length=16)] = "error"


# --- orders:requests / orders:events -------------------------------------------


class Action(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class OrderType(StrEnum):
    LMT = "LMT"
    MKT = "MKT"


ClientOrderId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class OrderNew(Schema, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "order.new"
    client_order_id: ClientOrderId
    contract: ContractRef
    action: Action
    quantity: PosQty
    order_type: OrderType = OrderType.LMT
    limit_price: Price | None = None
    tif: Annotated[str, msgspec.Meta(max_length=8)] = "DAY"
    reduce_only: bool = False
    reason: Text = ""
    # An operator who asked for this order (a flatten); "" for the strategy's own rules.
    requested_by: Annotated[str, msgspec.Meta(max_length=128)] = ""

    def __post_init__(self) -> None:
        if self.order_type is OrderType.LMT and self.limit_price is None:
            raise ValueError("a limit order needs limit_price")


class OrderCancel(Schema, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "order.cancel"
    client_order_id: ClientOrderId
    reason: Text = ""


class OrderModify(Schema, frozen=True, kw_only=True):
    """Reprice a working limit order (same client order id)."""

    TYPE: ClassVar[str] = "order.modify"
    client_order_id: ClientOrderId
    limit_price: Price
    reason: Text = ""


class OrderEventKind(StrEnum):
    ACK = "ack"
    PARTIAL = "partial"
    FILL = "fill"
    MODIFIED = "modified"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    DENIED = "denied"  # refused by the strategy's pre-trade risk check; never sent
    # An option settled at its expiry instant: the closing action, quantity, settlement
    # price (0 worthless, else intrinsic value, cash-settled) and an exec id, like a fill.
    EXPIRED = "expired"


class OrderEvent(Schema, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "order.event"
    client_order_id: ClientOrderId
    kind: OrderEventKind
    contract: ContractRef | None = None
    action: Action | None = None
    ib_order_id: Int64 = 0
    fill_qty: Annotated[int, msgspec.Meta(ge=0, le=10_000_000)] = 0
    fill_price: Price | None = None
    commission: Annotated[float, msgspec.Meta(ge=0.0, le=1e6)] = 0.0
    filled_total: Annotated[int, msgspec.Meta(ge=0, le=10_000_000)] = 0
    remaining: Annotated[int, msgspec.Meta(ge=0, le=10_000_000)] = 0
    exec_id: str = ""
    reason: Text = ""
    simulated: bool = True
    # When it happened on the adapter's trading clock (epoch s; shared/clock.py): in a
    # backtest, simulated time; the entry's ts is host time. 0: not stamped (older entry).
    at: Annotated[float, msgspec.Meta(ge=0.0, le=1e11)] = 0.0


# --- account -------------------------------------------------------------------


class Position(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    contract: ContractRef
    quantity: Qty
    avg_cost: Money
    market_price: Price | None = None
    unrealized_pnl: Money | None = None


class AccountSnapshot(Schema, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "account"
    account: Symbol
    net_liquidation: Money
    cash: Money
    buying_power: Money
    day_pnl: Money | None = None
    unrealized_pnl: Money | None = None
    realized_pnl: Money | None = None
    positions: list[Position] = []
    currency: str = "USD"
    simulated: bool = False  # the adapter's simulated book (account id ends "-SIM")


# --- sys:control ---------------------------------------------------------------


class ControlAction(StrEnum):
    HALT = "halt"
    REDUCE = "reduce"
    RESUME = "resume"
    FLATTEN = "flatten"


Who = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
EpochS = Annotated[float, msgspec.Meta(ge=0.0, le=1e11)]


class RiskState(StrEnum):
    """What the strategy's risk engine allows: everything, only exits, or nothing new."""

    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


class Control(Schema, frozen=True, kw_only=True):
    """An operator's control request: who, when (envelope ts) and why.

    A request, not a fact: only the strategy applies it (and answers with a
    ``risk.state`` record). ``expires`` (epoch s, 0: never) keeps a request that
    nobody applied in time (the strategy was down) from acting hours later.
    """

    TYPE: ClassVar[str] = "control"
    action: ControlAction
    who: Who
    why: Text = ""
    target: str = ""
    expires: EpochS = 0.0


class RiskStateChange(Schema, frozen=True, kw_only=True):
    """The risk state the strategy applied, written in one MULTI with ``risk:state``.

    ``request`` is the ``sys:control`` entry id of the control it answers ("" for the
    risk engine's own changes). ``state == previous`` answers a request that changed
    nothing; who/why/since are then those of the standing state. ``breach``: this
    change is the daily-loss limit tripping.
    """

    TYPE: ClassVar[str] = "risk.state"
    state: RiskState
    previous: RiskState
    who: Who
    why: Text = ""
    since: EpochS = 0.0
    request: Annotated[str, msgspec.Meta(max_length=64)] = ""
    breach: bool = False

    @property
    def changed(self) -> bool:
        return self.state is not self.previous


# --- strategy:decisions / sys:alerts -------------------------------------------


class DecisionOutcome(StrEnum):
    TAKEN = "taken"
    SKIPPED = "skipped"
    DENIED = "denied"


class DecisionKind(StrEnum):
    ENTRY = "entry"
    EXIT = "exit"
    REPRICE = "reprice"
    CANCEL = "cancel"
    RISK = "risk"
    EXPIRY = "expiry"


class Decision(Schema, frozen=True, kw_only=True):
    """One strategy decision, taken or not, with the reason (for the dashboard)."""

    TYPE: ClassVar[str] = "decision"
    cycle: Annotated[str, msgspec.Meta(max_length=64)]
    kind: DecisionKind
    outcome: DecisionOutcome
    reason: Text
    symbol: str = ""
    direction: Direction | None = None
    contract: ContractRef | None = None
    quantity: Annotated[int, msgspec.Meta(ge=0, le=10_000_000)] = 0
    limit_price: Price | None = None
    client_order_id: str = ""
    inputs: dict[str, Money] = {}
    at: EpochS = 0.0  # trading-clock time (simulated in a backtest); entry ts is host time


class AlertSeverity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertState(StrEnum):
    """A condition that opens and later closes, or a one-off event."""

    OPEN = "open"
    CLOSED = "closed"
    EVENT = "event"


class Alert(Schema, frozen=True, kw_only=True):
    """Something an operator should look at (e.g. ledger and broker disagree).

    ``key`` names the condition stably (``gateway``, ``service:strategy``) so the
    notifier can deduplicate, repeat while it is open and close it with a recovery
    message; ``opened_at`` (epoch seconds) says since when, for "after 3 m 12 s".
    """

    TYPE: ClassVar[str] = "alert"
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    severity: AlertSeverity
    message: Text
    source: str = ""
    details: dict[str, Text] = {}
    key: Annotated[str, msgspec.Meta(max_length=128)] = ""
    state: AlertState = AlertState.EVENT
    opened_at: Annotated[float, msgspec.Meta(ge=0.0, le=1e11)] = 0.0

    @property
    def alert_key(self) -> str:
        """The stable key of the condition (the code when none was given)."""
        return self.key or self.code


# --- sys:clock (simulated sessions: shared/clock.py) ----------------------------


class ClockTick(Schema, frozen=True, kw_only=True):
    """The backtest driver's step: every service moves its SimClock to ``t``."""

    TYPE: ClassVar[str] = "clock.tick"
    t: EpochS
    seq: UInt63


class ClockAck(msgspec.Struct, frozen=True, kw_only=True):
    """A service has done everything tick ``seq`` asked (JSON on sys:clock:ack:{service});
    ``next_deadline`` is its earliest parked timer (None: no timer waits)."""

    seq: UInt63
    t: EpochS
    next_deadline: EpochS | None = None


def schema_for(type_name: str) -> type[Schema] | None:
    """The body class registered for a wire type, if any."""
    return Schema.registry.get(type_name)
