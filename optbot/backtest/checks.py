"""After a run: the fault suite's invariants on simulated time, and ledger = fills.

- no fill booked twice or beyond its order, no fill lost (``strategy:positions`` and the
  simulated book equal the net of the fills);
- no entry while HALTED/REDUCING, while the gateway was not connected, or on a stale
  quote, with one lockstep step of grace (``Timeline``);
- the strategy ledger's realized P&L and commissions (``strategy:pnl``) equal those
  booked from the fills on ``orders:events`` (``shared.performance``), to the cent.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from optbot.backtest.collect import Collected
from optbot.backtest.invariants import (
    double_fills,
    forbidden_entries,
    lost_fills,
    read_record,
    sim_book_mismatch,
    stale_entries,
)
from shared.performance import analyze, cents


def ledger_mismatch(run: Collected) -> list[str]:
    """The ledger's figures against the fills' (both booked the same way)."""
    realized, commissions = run.ledger("realized"), run.ledger("commissions")
    if realized is None or commissions is None:
        return [] if not run.fills else ["strategy:pnl was never written, yet there are fills"]
    booked = analyze(run.fills).stats
    out = []
    if cents(booked.realized) != cents(realized):
        out.append(f"ledger realized {realized} != fills' realized {cents(booked.realized)}")
    if cents(booked.commissions) != cents(commissions):
        out.append(
            f"ledger commissions {commissions} != fills' commissions {cents(booked.commissions)}"
        )
    return out


async def violations(
    redis: aioredis.Redis,
    run: Collected,
    *,
    grace_s: float,
    max_quote_age_s: float,
) -> list[str]:
    rec = await read_record(redis, when=run.timeline, grace=grace_s)
    out = double_fills(rec) + lost_fills(rec) + forbidden_entries(rec)
    out += await stale_entries(redis, rec, max_quote_age_s)
    out += await sim_book_mismatch(redis)
    return out + ledger_mismatch(run)
