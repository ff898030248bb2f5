"""The market-data line budget and its priorities (pure logic, no I/O).

IB grants a fixed number of concurrent lines (100 by default) and answers 101
beyond it. We keep our own count so a request beyond the budget is refused with a
reason we choose, and so an important line (a held position, an index used for
sentiment) can evict a less important one instead of being refused.

The ladder, highest first: held positions (10), index symbols (9), ordinary
subscriptions such as the watchlist (up to 8), option-chain lines (1). A chain's
lines are the first refused and the first evicted; they never evict anything above
them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

PRIO_POSITION = 10  # a contract we hold: its price drives exits and risk
PRIO_INDEX = 9  # OPTBOT_GW_INDEX_SYMBOLS (VIX, SPY, QQQ): market sentiment
PRIO_REQUEST_MAX = 8  # what an ordinary request can claim
PRIO_CHAIN = 1  # an option chain's lines: browsed, mostly released a few seconds later


def effective_priority(requested: int, *, held: bool, index: bool) -> int:
    """Positions outrank indexes, which outrank any ordinary request."""
    if held:
        return PRIO_POSITION
    if index:
        return PRIO_INDEX
    return max(0, min(requested, PRIO_REQUEST_MAX))


@dataclass(frozen=True, slots=True)
class Admission:
    ok: bool
    evict: str | None = None  # key whose line makes room
    reason: str = ""


class LineBudget:
    """At most ``limit`` lines; a full budget admits only by evicting a lower priority."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._prio: dict[str, int] = {}
        self._seq: dict[str, int] = {}
        self._counter = itertools.count()

    def __len__(self) -> int:
        return len(self._prio)

    def __contains__(self, key: object) -> bool:
        return key in self._prio

    def priority(self, key: str) -> int | None:
        return self._prio.get(key)

    def admit(self, key: str, priority: int) -> Admission:
        """Take a line for ``key`` (a repeat request may raise its priority)."""
        if key in self._prio:
            self._prio[key] = max(self._prio[key], priority)
            return Admission(True)
        if len(self._prio) < self.limit:
            self._add(key, priority)
            return Admission(True)
        victim = self.lowest_below(priority)
        if victim is not None:
            self.release(victim)
            self._add(key, priority)
            return Admission(True, evict=victim)
        return Admission(
            False,
            reason=(
                f"market-data line budget full ({len(self._prio)}/{self.limit}, "
                f"OPTBOT_IB_MAX_LINES); every line has priority >= {priority}"
            ),
        )

    def lowest_below(self, priority: int, among: set[str] | None = None) -> str | None:
        """The line to give up for one of ``priority`` (lowest, newest first), if any."""
        keys = [k for k in self._prio if self._prio[k] < priority and (among is None or k in among)]
        if not keys:
            return None
        return min(keys, key=lambda k: (self._prio[k], -self._seq[k]))

    def release(self, key: str) -> None:
        self._prio.pop(key, None)
        self._seq.pop(key, None)

    def _add(self, key: str, priority: int) -> None:
        self._prio[key] = priority
        self._seq[key] = next(self._counter)
