"""The fault suite's invariants live in ``optbot.backtest.invariants`` (the backtest checks
the same ones on simulated time); this module keeps the suite's imports working."""

from __future__ import annotations

from optbot.backtest.invariants import (
    FILL_KINDS,
    GRACE_S,
    Record,
    Timeline,
    dead_letters,
    double_fills,
    entry_time,
    forbidden_entries,
    lost_fills,
    read_record,
    sim_book_mismatch,
    stale_entries,
)

__all__ = [
    "FILL_KINDS",
    "GRACE_S",
    "Record",
    "Timeline",
    "dead_letters",
    "double_fills",
    "entry_time",
    "forbidden_entries",
    "lost_fills",
    "read_record",
    "sim_book_mismatch",
    "stale_entries",
]
