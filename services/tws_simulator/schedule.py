"""The regime schedule: which regime the market is in, by simulated time since start.

The default is the demo schedule: a new user running ``make run`` with no settings
sees the whole loop within about three minutes (sentiment turns bullish, an
entry fills, the position is marked, a sell-off flips sentiment and the position
is closed, then the mirror image). To fit a trading day's story into minutes, its
trends are deliberately exaggerated (the market factor drifts ±24-36 %/h instead
of the regimes' ±1.5 %/h), and two cheap "leaders" (INTC, BAC: options a small
account can afford) run ±180 %/h (3 %/min) in each trend, so the momentum screen
ranks them first and a position entered with the trend reaches its take-profit
before the trend turns. Volatility is untouched (the diffusion stays on the one
calendar clock; see market.py). ``off`` pins the starting regime, with realistic
drift; a custom schedule is ``regime:seconds[,regime:seconds...]``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .regimes import PARAMS, Regime, parse_regime

DEMO = "demo"
OFF = "off"
MAX_PHASES = 100


@dataclass(frozen=True, slots=True)
class Phase:
    """One stretch of the schedule."""

    regime: Regime
    seconds: float  # simulated seconds
    drift_per_hour: float  # log drift of the market factor in this phase
    leaders: tuple[str, ...] = ()
    leader_drift_per_hour: float = 0.0  # extra log drift of each leader


LEADERS = ("INTC", "BAC")

DEMO_PHASES: tuple[Phase, ...] = (
    Phase(Regime.TRENDING_UP, 150.0, 0.24, LEADERS, 1.8),
    Phase(Regime.TRENDING_DOWN, 180.0, -0.36, LEADERS, -1.8),
    Phase(Regime.CHOPPY, 60.0, 0.0),
    Phase(Regime.TRENDING_DOWN, 150.0, -0.24, LEADERS, -1.8),
    Phase(Regime.TRENDING_UP, 180.0, 0.36, LEADERS, 1.8),
    Phase(Regime.CHOPPY, 60.0, 0.0),
)


def parse_schedule(text: str) -> tuple[Phase, ...]:
    """``demo``, ``off`` (no schedule) or ``regime:seconds,...`` into phases.

    Raises ValueError naming the bad part; custom phases use the regimes' own drift.
    """
    key = text.strip().lower()
    if key == DEMO:
        return DEMO_PHASES
    if key in (OFF, ""):
        return ()
    phases: list[Phase] = []
    for part in key.split(","):
        name, sep, seconds = part.partition(":")
        try:
            regime, length = parse_regime(name), float(seconds)
        except ValueError as e:
            raise ValueError(f"schedule phase {part!r}: expected regime:seconds") from e
        if not sep or not 1.0 <= length <= 7 * 86400:
            raise ValueError(f"schedule phase {part!r}: seconds must be 1 to 604800")
        phases.append(Phase(regime, length, PARAMS[regime].drift_per_hour))
    if len(phases) > MAX_PHASES:
        raise ValueError(f"schedule has {len(phases)} phases, at most {MAX_PHASES}")
    return tuple(phases)


def phase_at(phases: tuple[Phase, ...], elapsed: float) -> Phase:
    """The phase in force ``elapsed`` simulated seconds after start (the schedule repeats)."""
    t = elapsed % sum(p.seconds for p in phases)
    for phase in phases:
        if t < phase.seconds:
            return phase
        t -= phase.seconds
    return phases[-1]
