"""Ledger vs broker account: a lasting difference is an alert, and so is its clearing."""

from __future__ import annotations

from dataclasses import dataclass

from msgspec.structs import replace

from services.strategy.reconcile import BookReconciler, Mismatch, Reconciler, compare
from shared.schemas import (
    AccountSnapshot,
    AlertSeverity,
    AlertState,
    ContractRef,
    Position,
    Right,
    SecType,
)

CALL = ContractRef(
    symbol="INTC",
    sec_type=SecType.OPT,
    expiry="20250124",
    strike=21,
    right=Right.CALL,
    multiplier=100,
)


def account(qty: int) -> AccountSnapshot:
    positions = [Position(contract=CALL, quantity=qty, avg_cost=90.0)] if qty else []
    return AccountSnapshot(
        account="DU1",
        net_liquidation=3756.96,
        cash=3756.96,
        buying_power=3756.96,
        positions=positions,
    )


def test_compare_when_quantities_differ_lists_the_contract() -> None:
    assert compare({CALL.key: 1}, account(1)) == []
    assert compare({CALL.key: 2}, account(1)) == [Mismatch(CALL.key, 2, 1)]
    assert compare({}, account(1)) == [Mismatch(CALL.key, 0, 1)]


def test_reconcile_when_difference_lasts_past_grace_alerts_once_then_clears() -> None:
    r = Reconciler(grace_s=3.0)
    diff = compare({CALL.key: 1}, account(0))
    assert r.observe(diff, 0.0) is None  # a fill and its snapshot may race
    assert r.observe(diff, 2.9) is None
    alert = r.observe(diff, 3.0)
    assert alert is not None and alert.severity is AlertSeverity.CRITICAL
    assert alert.details == {CALL.key: "ledger 1, account 0"} and r.status == "mismatch (1)"
    assert r.observe(diff, 9.0) is None  # not repeated
    cleared = r.observe([], 10.0)
    assert cleared is not None and cleared.severity is AlertSeverity.INFO and r.status == "ok"
    # One condition for the notifier: opened, then closed, same key and opened_at.
    assert (alert.key, alert.state, cleared.key, cleared.state) == (
        "reconcile", AlertState.OPEN, "reconcile", AlertState.CLOSED,
    )  # fmt: skip
    assert cleared.opened_at == alert.opened_at > 0


def test_reconcile_when_difference_clears_within_grace_stays_silent() -> None:
    r = Reconciler(grace_s=3.0)
    assert r.observe(compare({CALL.key: 1}, account(0)), 0.0) is None
    assert r.observe([], 1.0) is None


@dataclass
class Held:
    qty: int
    simulated: bool


def test_reconcile_when_simulated_book_differs_from_ledger_alerts_and_broker_ignores_it() -> None:
    books = BookReconciler(grace_s=3.0)
    ledger = {CALL.key: Held(qty=2, simulated=True)}  # two simulated fills booked
    sim_book = replace(account(1), account="DU1-SIM", simulated=True)  # executor holds one
    assert books.observe(account(0), ledger, 0.0) is None  # broker never sees simulated fills
    assert books.observe(sim_book, ledger, 0.0) is None
    alert = books.observe(sim_book, ledger, 3.0)
    assert alert is not None and alert.severity is AlertSeverity.CRITICAL
    assert "simulated book" in alert.message and alert.details[CALL.key] == "ledger 2, account 1"
    assert books.observe(account(0), ledger, 3.5) is None and books.status == "mismatch (1)"
    cleared = books.observe(replace(sim_book, positions=account(2).positions), ledger, 4.0)
    assert cleared is not None and cleared.severity is AlertSeverity.INFO and books.status == "ok"
    assert (alert.key, alert.state) == ("reconcile:simulated", AlertState.OPEN)
    assert (cleared.key, cleared.state) == ("reconcile:simulated", AlertState.CLOSED)
