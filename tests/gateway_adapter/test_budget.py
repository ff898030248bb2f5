"""The line budget: refusals with a reason, evictions by priority."""

from __future__ import annotations

from services.gateway_adapter.budget import (
    PRIO_CHAIN,
    PRIO_INDEX,
    PRIO_POSITION,
    PRIO_REQUEST_MAX,
    LineBudget,
    effective_priority,
)


def test_admit_when_under_limit_accepts() -> None:
    b = LineBudget(2)
    assert b.admit("A", 5).ok and b.admit("B", 5).ok and len(b) == 2


def test_admit_when_full_and_not_higher_refuses_with_reason() -> None:
    b = LineBudget(1)
    b.admit("A", 5)
    adm = b.admit("B", 5)
    assert not adm.ok and "budget full (1/1" in adm.reason and "B" not in b


def test_admit_when_full_and_higher_evicts_lowest_newest() -> None:
    b = LineBudget(3)
    b.admit("old-low", 2)
    b.admit("new-low", 2)
    b.admit("mid", 5)
    adm = b.admit("VIX", PRIO_INDEX)
    assert adm.ok and adm.evict == "new-low" and "old-low" in b and "VIX" in b


def test_admit_when_key_repeated_keeps_one_line_and_raises_priority() -> None:
    b = LineBudget(1)
    b.admit("A", 1)
    assert b.admit("A", 7).ok and b.priority("A") == 7 and len(b) == 1


def test_release_when_line_dropped_frees_room() -> None:
    b = LineBudget(1)
    b.admit("A", 9)
    b.release("A")
    assert b.admit("B", 0).ok


def test_effective_priority_when_position_or_index_outranks_requests() -> None:
    assert effective_priority(10, held=False, index=False) == PRIO_REQUEST_MAX
    assert effective_priority(0, held=False, index=True) == PRIO_INDEX
    assert effective_priority(0, held=True, index=True) == PRIO_POSITION
    assert effective_priority(-3, held=False, index=False) == 0


def test_admit_when_full_of_watchlist_lines_refuses_chain_line_without_evicting() -> None:
    b = LineBudget(2)
    b.admit("AAPL", PRIO_REQUEST_MAX)
    b.admit("META", PRIO_REQUEST_MAX)
    adm = b.admit("AAPL 20270115 C 200", PRIO_CHAIN)
    assert not adm.ok and adm.evict is None and "AAPL" in b and "META" in b


def test_admit_when_watchlist_line_needs_room_evicts_newest_chain_line() -> None:
    b = LineBudget(3)
    b.admit("AAPL", PRIO_REQUEST_MAX)
    b.admit("opt-1", PRIO_CHAIN)
    b.admit("opt-2", PRIO_CHAIN)
    adm = b.admit("META", 8)
    assert adm.ok and adm.evict == "opt-2" and "AAPL" in b and "opt-1" in b


def test_lowest_below_when_only_higher_lines_returns_none() -> None:
    b = LineBudget(3)
    b.admit("AAPL", 8)
    b.admit("opt-1", PRIO_CHAIN)
    assert b.lowest_below(PRIO_CHAIN) is None
    assert b.lowest_below(8) == "opt-1"
    assert b.lowest_below(8, among={"AAPL"}) is None
