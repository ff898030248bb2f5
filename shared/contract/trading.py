"""Strategy keys: the risk state, the decisions and the ledger's views."""

from __future__ import annotations

from typing import Final

from shared.contract.spec import MONITOR, NOTIFIER, STRATEGY, Entry, Kind
from shared.contract.values import EquityPoint, PnlFields, PositionRow, WorkingOrderRow
from shared.schemas import Control, Decision, RiskStateChange

SYS_CONTROL: Final = "sys:control"
RISK_STATE: Final = "risk:state"
STRATEGY_DECISIONS: Final = "strategy:decisions"
STRATEGY_POSITIONS: Final = "strategy:positions"
STRATEGY_PNL: Final = "strategy:pnl"
STRATEGY_ORDERS: Final = "strategy:orders"
STRATEGY_EQUITY: Final = "strategy:equity"
STRATEGY_DAY: Final = "strategy:day"

ENTRIES: Final = (
    # The CLI (operator) and the dashboard ask (``control``); the strategy answers with
    # each state it applies (``risk.state``), its own risk engine's included.
    Entry(SYS_CONTROL, Kind.STREAM, STRATEGY,
          "control requests (who, why, expires) and the risk.state records that answer them",
          readers=(MONITOR,), consumers=(STRATEGY, NOTIFIER), senders=(STRATEGY, MONITOR),
          value=(Control, RiskStateChange), cap="OPTBOT_MAXLEN_CONTROL", inbox=True),
    # The strategy alone writes it, in one MULTI with its risk.state record.
    Entry(RISK_STATE, Kind.HASH, STRATEGY, "state, why, who, since, breach_day",
          readers=(MONITOR,)),
    Entry(STRATEGY_DECISIONS, Kind.STREAM, STRATEGY, "every decision, taken or not, and why",
          readers=(MONITOR, NOTIFIER), value=(Decision,), cap="OPTBOT_MAXLEN_SIGNALS"),
    Entry(STRATEGY_POSITIONS, Kind.HASH, STRATEGY, "one JSON field per held contract",
          readers=(MONITOR, NOTIFIER), value=(PositionRow,), cap="replaced whole"),
    Entry(STRATEGY_PNL, Kind.HASH, STRATEGY, "cash, equity, P&L, reconcile status",
          readers=(MONITOR, NOTIFIER), value=(PnlFields,), cap="replaced whole"),
    Entry(STRATEGY_ORDERS, Kind.HASH, STRATEGY, "one JSON field per working order",
          readers=(MONITOR,), value=(WorkingOrderRow,), cap="replaced whole"),
    Entry(STRATEGY_EQUITY, Kind.LIST, STRATEGY, "equity curve points (JSON)",
          readers=(MONITOR,), value=(EquityPoint,), cap="last 5000"),
    Entry(STRATEGY_DAY, Kind.HASH, STRATEGY, "strategy only: the trading day's opening equity"),
)  # fmt: skip
