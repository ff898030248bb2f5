"""Every pre-trade check, allowed and denied, with defaults sized for a 3,756.96 account."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import msgspec
import pytest
import redis.asyncio as aioredis

from services.strategy.risk import (
    OrderIntent,
    RiskEngine,
    RiskLimits,
    RiskState,
    RiskStatus,
    RiskView,
    load_status,
)
from shared.schemas import Action, ContractRef, Right, SecType
from shared.streams import RISK_STATE

CALL = ContractRef(
    symbol="INTC",
    sec_type=SecType.OPT,
    expiry="20250124",
    strike=21.0,
    right=Right.CALL,
    multiplier=100,
)
OTHER = msgspec.structs.replace(CALL, strike=22.0)
ENGINE = RiskEngine(RiskLimits())  # 5 % / 15 % / 3 positions / 2 contracts / 4 % / 10 per min / 5 s
BUY = OrderIntent(CALL, Action.BUY, 1, 0.90)  # premium 90.00
CLOSE = OrderIntent(CALL, Action.SELL, 1, 0.90, reduce_only=True)
OK = RiskView(
    status=RiskStatus(RiskState.ACTIVE),
    gateway_connected=True,
    gateway_why="connected",
    quote_age_s=0.5,
    working_keys=frozenset(),
    open_positions=0,
    position_qty=0,
    premium_at_risk=Decimal(0),
    net_liquidation=Decimal("3756.96"),
    starting_equity=Decimal("3756.96"),
    daily_pnl=Decimal(0),
    orders_last_min=0,
)


def test_check_when_everything_in_limits_allows() -> None:
    verdict = ENGINE.check(BUY, OK)
    assert verdict.allowed and verdict.check == "ok"


DENIALS = [
    ("state", {"status": RiskStatus(RiskState.HALTED, "news")}, "risk state HALTED (news)"),
    (
        "state",
        {"status": RiskStatus(RiskState.REDUCING, "eod")},
        "risk state REDUCING: only orders that lower exposure (eod)",
    ),
    (
        "duplicate",
        {"working_keys": frozenset({CALL.key})},
        "an order for INTC 20250124 21 C is already working",
    ),
    (
        "gateway",
        {"gateway_connected": False, "gateway_why": "disconnected 1100"},
        "gateway not connected (disconnected 1100)",
    ),
    ("stale_quote", {"quote_age_s": 6.2}, "quote is 6.2s old (limit 5s)"),
    ("stale_quote", {"quote_age_s": None}, "no quote for INTC 20250124 21 C"),
    # 4 % of 3,756.96 = 150.28
    ("daily_loss", {"daily_pnl": Decimal("-150.28")}, "daily loss 150.28 >= limit 150.28"),
    ("order_rate", {"orders_last_min": 10}, "10 orders in the last minute (limit 10)"),
    ("max_positions", {"open_positions": 3}, "3 positions open (limit 3)"),
    ("max_contracts", {"position_qty": 2}, "3 contracts in INTC 20250124 21 C (limit 2)"),
    # 15 % of 3,756.96 = 563.54; 480 + 90 = 570
    (
        "total_premium",
        {"premium_at_risk": Decimal("480")},
        "premium at risk 570.00 > 15% cap 563.54",
    ),
]


@pytest.mark.parametrize(("check", "change", "reason"), DENIALS)
def test_check_when_limit_breached_denies_with_reason(
    check: str, change: dict[str, object], reason: str
) -> None:
    verdict = ENGINE.check(BUY, dataclasses.replace(OK, **change))  # type: ignore[arg-type]
    assert not verdict.allowed
    assert (verdict.check, verdict.reason) == (check, reason)
    assert verdict.halt is (check == "daily_loss")


def test_check_when_trade_premium_above_5pct_denies() -> None:
    big = OrderIntent(CALL, Action.BUY, 1, 2.50)  # 250.00 > 187.85
    verdict = ENGINE.check(big, OK)
    assert (verdict.check, verdict.reason) == (
        "trade_premium",
        "premium 250.00 > 5% of net liquidation 187.85",
    )


@pytest.mark.parametrize(
    "change",
    [
        {"daily_pnl": Decimal("-150.27")},
        {"orders_last_min": 9},
        {"open_positions": 2},
        {"position_qty": 1},
        {"premium_at_risk": Decimal("473.54")},  # 473.54 + 90 = 563.54: at the cap
        {"quote_age_s": 5.0},
        {"working_keys": frozenset({OTHER.key})},
        {"open_positions": 3, "position_qty": 1},  # adding to a held contract: no new position
    ],
)
def test_check_when_just_inside_limit_allows(change: dict[str, object]) -> None:
    assert ENGINE.check(BUY, dataclasses.replace(OK, **change)).allowed  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "change",
    [
        {"status": RiskStatus(RiskState.REDUCING)},
        {"gateway_connected": False},
        {"quote_age_s": 60.0},
        {"daily_pnl": Decimal("-1000")},
        {"orders_last_min": 99},
        {"open_positions": 9},
        {"premium_at_risk": Decimal("9999")},
    ],
)
def test_check_when_reduce_only_passes_every_limit_but_halt(change: dict[str, object]) -> None:
    assert ENGINE.check(CLOSE, dataclasses.replace(OK, **change)).allowed  # type: ignore[arg-type]


def test_check_when_halted_denies_reduce_only_too() -> None:
    verdict = ENGINE.check(CLOSE, dataclasses.replace(OK, status=RiskStatus(RiskState.HALTED)))
    assert not verdict.allowed and verdict.check == "state"


def test_check_when_reduce_only_duplicates_working_exit_denies() -> None:
    verdict = ENGINE.check(CLOSE, dataclasses.replace(OK, working_keys=frozenset({CALL.key})))
    assert (verdict.allowed, verdict.check) == (False, "duplicate")


async def test_load_status_when_cli_halted_reads_state_and_reason(redis: aioredis.Redis) -> None:
    assert (await load_status(redis)).state is RiskState.ACTIVE  # nothing stored: fresh install
    await redis.hset(
        RISK_STATE, mapping={"state": "HALTED", "why": "fomc", "who": "ann", "since": "1.5"}
    )
    assert await load_status(redis) == RiskStatus(RiskState.HALTED, "fomc", "ann", 1.5)
    await redis.hset(RISK_STATE, "state", "PAUSED?")
    assert (await load_status(redis)).state is RiskState.HALTED  # unreadable: fail safe
