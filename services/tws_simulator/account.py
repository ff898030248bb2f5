"""Paper account: cash, positions and the account messages derived from them.

Fills move cash by price * multiplier * quantity plus commission, like IB's
cash ledger; net liquidation marks positions at the current mid.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from .contracts import Instrument
from .protocol import Out, frame

Mark = Callable[[Instrument], float]


@dataclass(slots=True)
class Position:
    """Signed quantity and IB-style average cost (per unit, multiplier included)."""

    inst: Instrument
    qty: float
    avg_cost: float


class Account:
    """Cash and positions of the single simulated account."""

    def __init__(self, account_id: str, cash: float) -> None:
        self.account_id = account_id
        self.cash = cash
        self.realized = 0.0
        self.positions: dict[int, Position] = {}

    def apply_fill(
        self, inst: Instrument, signed_qty: float, price: float, commission: float
    ) -> float:
        """Book a fill; returns the realized P&L it produced (net of commission)."""
        mult = inst.mult
        self.cash -= signed_qty * price * mult + commission
        pos = self.positions.get(inst.con_id)
        if pos is None or pos.qty == 0:
            cost = (abs(signed_qty) * price * mult + commission) / abs(signed_qty)
            self.positions[inst.con_id] = Position(inst, signed_qty, cost)
            return 0.0
        realized = -commission
        if pos.qty * signed_qty > 0:  # adding to the position
            total = abs(pos.qty) * pos.avg_cost + abs(signed_qty) * price * mult + commission
            pos.qty += signed_qty
            pos.avg_cost = total / abs(pos.qty)
        else:
            closed = min(abs(signed_qty), abs(pos.qty))
            sign = 1 if pos.qty > 0 else -1
            realized += sign * closed * (price * mult - pos.avg_cost)
            pos.qty += signed_qty
            if pos.qty * sign < 0:  # flipped through zero
                pos.avg_cost = price * mult
        self.realized += realized
        return realized

    def market_value(self, mark: Mark) -> float:
        return sum(p.qty * mark(p.inst) * p.inst.mult for p in self.positions.values())

    def unrealized(self, mark: Mark) -> float:
        return sum(
            p.qty * (mark(p.inst) * p.inst.mult - p.avg_cost) for p in self.positions.values()
        )

    def values(self, mark: Mark) -> list[tuple[str, str, str]]:
        """(tag, value, currency) rows shared by account updates and account summary."""
        gross = sum(abs(p.qty * mark(p.inst) * p.inst.mult) for p in self.positions.values())
        net = self.cash + self.market_value(mark)
        avail = max(0.0, self.cash)
        rows = [
            ("NetLiquidation", net),
            ("TotalCashValue", self.cash),
            ("SettledCash", self.cash),
            ("BuyingPower", avail),
            ("AvailableFunds", avail),
            ("ExcessLiquidity", avail),
            ("EquityWithLoanValue", net),
            ("GrossPositionValue", gross),
            ("InitMarginReq", 0.0),
            ("MaintMarginReq", 0.0),
            ("FullInitMarginReq", 0.0),
            ("UnrealizedPnL", self.unrealized(mark)),
            ("RealizedPnL", self.realized),
            ("CashBalance", self.cash),
        ]
        out = [
            ("AccountCode", self.account_id, ""),
            ("AccountType", "INDIVIDUAL", ""),
            ("Currency", "USD", "USD"),
        ]
        return out + [(tag, f"{v:.2f}", "USD") for tag, v in rows]

    # --- message encoders -------------------------------------------------------------

    def update_frames(self, mark: Mark, now: float) -> list[bytes]:
        """updateAccountValue (6) rows, updatePortfolio (7) rows, updateAccountTime (8):
        ``HH:MM`` of ``now`` (the simulated time) in this TWS's zone, UTC."""
        out = [
            frame(Out.ACCT_VALUE, 2, tag, val, cur, self.account_id)
            for tag, val, cur in self.values(mark)
        ]
        out += [self.portfolio_frame(p, mark) for p in self.positions.values()]
        out.append(frame(Out.ACCT_UPDATE_TIME, 1, time.strftime("%H:%M", time.gmtime(now))))
        return out

    def portfolio_frame(self, p: Position, mark: Mark) -> bytes:
        """updatePortfolio (msg 7, version 8)."""
        px = mark(p.inst)
        value = p.qty * px * p.inst.mult
        unreal = value - p.qty * p.avg_cost
        return frame(
            Out.PORTFOLIO_VALUE,
            8,
            *p.inst.portfolio_fields(),
            p.qty,
            round(px, 4),
            round(value, 2),
            round(p.avg_cost, 4),
            round(unreal, 2),
            0.0,
            self.account_id,
        )

    def position_frame(self, p: Position) -> bytes:
        """position (msg 61, version 3)."""
        return frame(
            Out.POSITION_DATA,
            3,
            self.account_id,
            *p.inst.core_fields(),
            p.qty,
            round(p.avg_cost, 4),
        )

    def position_frames(self) -> list[bytes]:
        """All positions then positionEnd (62): the reqPositions answer."""
        out = [self.position_frame(p) for p in self.positions.values()]
        return [*out, frame(Out.POSITION_END, 1)]

    def summary_frames(self, req_id: int, tags: str, mark: Mark) -> list[bytes]:
        """accountSummary (63) per requested tag, then accountSummaryEnd (64)."""
        wanted = {t.strip() for t in tags.split(",") if t.strip()}
        out = [
            frame(Out.ACCOUNT_SUMMARY, 1, req_id, self.account_id, tag, val, cur)
            for tag, val, cur in self.values(mark)
            if not wanted or "All" in wanted or tag in wanted
        ]
        return [*out, frame(Out.ACCOUNT_SUMMARY_END, 1, req_id)]

    def multi_frames(self, req_id: int, model_code: str, mark: Mark) -> list[bytes]:
        """accountUpdateMulti (73) rows then accountUpdateMultiEnd (74)."""
        out = [
            frame(Out.ACCOUNT_UPDATE_MULTI, 1, req_id, self.account_id, model_code, tag, val, cur)
            for tag, val, cur in self.values(mark)
        ]
        return [*out, frame(Out.ACCOUNT_UPDATE_MULTI_END, 1, req_id)]

    def pnl_frame(self, req_id: int, mark: Mark) -> bytes:
        """pnl (msg 94): daily (= unrealized + realized since start), unrealized, realized."""
        unreal = self.unrealized(mark)
        return frame(
            Out.PNL,
            req_id,
            round(unreal + self.realized, 2),
            round(unreal, 2),
            round(self.realized, 2),
        )
