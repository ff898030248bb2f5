"""What a simulated run leaves behind, read from its streams: the report's only input.

The driver reads ``orders:requests``, ``orders:events``, ``strategy:decisions`` (denials
are decisions with outcome ``denied``) and the risk-state changes once the run ends,
decodes them (``shared.envelope.decode``) and builds a ``RunRecord`` with
``record_from_messages``; ``report.write_report`` turns it into files. Nothing here
talks to Redis, so a record can be built in a test by hand.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from shared.performance import EquityPoint, FillRecord, Mark, fills_from_messages
from shared.schemas import Decision, DecisionOutcome, OrderNew, RiskStateChange


@dataclass(frozen=True, slots=True)
class DecisionRow:
    """One strategy decision (taken, skipped or denied) with its reason."""

    ts: float
    cycle: str
    kind: str
    outcome: str
    symbol: str
    direction: str
    contract: str
    quantity: int
    limit_price: float | None
    client_order_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class RiskChange:
    """A risk state the strategy applied (ACTIVE / REDUCING / HALTED) and why."""

    ts: float
    state: str
    previous: str
    who: str
    why: str


@dataclass
class RunRecord:
    """A run's facts: fills, decisions, risk changes, denials, and how it was run."""

    fills: list[FillRecord] = field(default_factory=list)
    decisions: list[DecisionRow] = field(default_factory=list)
    risk_changes: list[RiskChange] = field(default_factory=list)
    denials: dict[str, int] = field(default_factory=dict)  # by reason, most first
    orders: int = 0  # new orders the strategy sent (orders:requests order.new)
    equity: list[EquityPoint] = field(default_factory=list)  # the ledger's curve, if read
    marks: list[Mark] = field(default_factory=list)  # marks for the curve from fills
    start_equity: Decimal = Decimal(0)  # starting cash: the curve's first value
    settings: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    commit: str = ""
    sessions: int = 0
    simulated_hours: float = 0.0
    wall_seconds: float = 0.0
    invariant_violations: list[str] = field(default_factory=list)
    partial: bool = False  # stopped early (Ctrl-C, error): the figures cover what ran
    notes: list[str] = field(default_factory=list)  # e.g. nondeterminism seen

    @property
    def speed(self) -> float | None:
        """Simulated seconds per wall second."""
        if self.wall_seconds <= 0:
            return None
        return self.simulated_hours * 3600 / self.wall_seconds


_NUMBER = re.compile(r"[-+]?\d[\d,]*(\.\d+)?")


_ORDER_ID = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9.]+)+")


def denial_reason(reason: str) -> str:
    """The kind of a denial, to count them: ``max_positions: 3 open of 3`` counts as
    ``max_positions`` (the check); a reprice refused for one order,
    ``ob-20250306-BAC-C-2: no reprice to 1.25: …``, as ``no reprice to #`` (the order's
    id is not a reason); a reason without a check with its numbers blanked, so each
    amount does not make its own row."""
    head, sep, rest = reason.partition(":")
    if sep and _ORDER_ID.fullmatch(head.strip()):
        head, sep, rest = rest.strip().partition(":")
    kind = head.strip() if sep else head
    return _NUMBER.sub("#", kind).strip()[:120] or "(no reason)"


def decision_row(ts_ns: int, d: Decision) -> DecisionRow:
    return DecisionRow(
        ts=ts_ns / 1e9,
        cycle=d.cycle,
        kind=d.kind.value,
        outcome=d.outcome.value,
        symbol=d.symbol,
        direction=d.direction.value if d.direction else "",
        contract=d.contract.key if d.contract else "",
        quantity=d.quantity,
        limit_price=d.limit_price,
        client_order_id=d.client_order_id,
        reason=d.reason,
    )


def record_from_messages(messages: Sequence[Any], **run: Any) -> RunRecord:
    """A record from decoded messages of the run's streams (any mix, each stream in
    order); ``run``: the other ``RunRecord`` fields (settings, seed, commit, ...)."""
    denials: Counter[str] = Counter()
    decisions: list[DecisionRow] = []
    changes: list[RiskChange] = []
    orders = 0
    for msg in messages:
        body = msg.body
        if isinstance(body, OrderNew):
            orders += 1
        elif isinstance(body, Decision):
            decisions.append(decision_row(msg.ts, body))
            if body.outcome is DecisionOutcome.DENIED:  # the risk check's refusals
                denials[denial_reason(body.reason)] += 1
        elif isinstance(body, RiskStateChange) and body.state is not body.previous:
            changes.append(
                RiskChange(msg.ts / 1e9, body.state.value, body.previous.value, body.who, body.why)
            )
    return RunRecord(
        fills=fills_from_messages(messages),
        decisions=decisions,
        risk_changes=changes,
        denials=dict(denials.most_common()),
        orders=orders,
        **run,
    )
