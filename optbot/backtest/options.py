"""What a backtest was asked to do, checked before anything starts.

Every bad input (``--days 0``, an unknown regime, a start that is not a session, an
``--out`` that cannot be written, an invalid ``OPTBOT_`` setting) is a ``BadInput``
naming the problem; the command prints it and exits 2 with nothing started.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optbot.backtest.sessions import CalendarError, Session, sessions
from shared.schemas import Regime
from shared.settings import ConfigError, Settings, load_settings

DEFAULT_REGIMES = (Regime.TRENDING_UP, Regime.CHOPPY, Regime.TRENDING_DOWN)
DEFAULT_STEP_S = 5.0


class BadInput(ValueError):
    """A backtest argument or setting that cannot run; the message names it."""


@dataclass(frozen=True)
class Plan:
    """A checked backtest: the sessions, the regime of each, the settings, where to write."""

    sessions: list[Session]
    regimes: list[Regime]  # one per session
    out: Path
    settings: Settings
    seed: int
    step_s: float
    minutes: float | None = None  # run only the first M minutes of each session
    monitor: bool = False
    overrides: dict[str, str] = field(default_factory=dict)  # OPTBOT_* for the children

    def session_end(self, session: Session) -> float:
        if self.minutes is None:
            return session.close
        return min(session.close, session.open + self.minutes * 60.0)

    @property
    def simulated_hours(self) -> float:
        return sum((self.session_end(s) - s.open) / 3600.0 for s in self.sessions)


def parse_regimes(text: str | None) -> list[Regime]:
    """``trending_up,choppy`` -> regimes, cycled one per session; an unknown name is named."""
    if text is None:
        return list(DEFAULT_REGIMES)
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise BadInput("--regimes is empty; give one or more of " + _known())
    out = []
    for name in names:
        try:
            out.append(Regime(name))
        except ValueError:
            raise BadInput(f"--regimes: unknown regime {name!r}; known: {_known()}") from None
    return out


def _known() -> str:
    return ", ".join(r.value for r in Regime)


def parse_start(text: str | None) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise BadInput(f"--start {text!r} is not a date (YYYY-MM-DD)") from None


def check_out(out: Path) -> Path:
    """``out`` as a writable directory (created if missing); a clear error otherwise."""
    if out.exists() and not out.is_dir():
        raise BadInput(f"--out {out} exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise BadInput(f"--out {out} is not writable: {exc.strerror or exc}") from None
    return out.resolve()


def plan(
    *,
    days: int,
    out: Path,
    start: str | None = None,
    seed: int | None = None,
    regimes: str | None = None,
    watchlist: str | None = None,
    monitor: bool = False,
    minutes: float | None = None,
    step_s: float | None = None,
) -> Plan:
    """Check everything that can be checked without starting anything."""
    if days < 1:
        raise BadInput(f"--days must be at least 1, got {days}")
    if minutes is not None and minutes <= 0:
        raise BadInput(f"--minutes must be positive, got {minutes:g}")
    if step_s is not None and step_s <= 0:
        raise BadInput(f"--step must be positive, got {step_s:g}")
    chosen = parse_regimes(regimes)
    overrides: dict[str, Any] = {}
    if seed is not None:
        if seed < 0:
            raise BadInput(f"--seed must be 0 or more, got {seed}")
        overrides["sim_seed"] = seed
    if watchlist is not None:
        overrides["md_watchlist"] = watchlist
    try:
        settings = load_settings(**overrides)
    except ConfigError as exc:
        text = str(exc)
        if watchlist is not None:
            text = text.replace("OPTBOT_MD_WATCHLIST", "--watchlist")
        raise BadInput(text) from None
    step = step_s or float(settings.sim_step_seconds or DEFAULT_STEP_S)
    if step > settings.risk_max_quote_age_s:
        # The clocks move before the step's data arrives: at each decision the newest
        # quotes are one step old, so a longer step would make every quote stale.
        raise BadInput(
            f"--step {step:g} is longer than OPTBOT_RISK_MAX_QUOTE_AGE_S "
            f"({settings.risk_max_quote_age_s:g}): every quote would be stale when the "
            "strategy decides"
        )
    try:
        found = sessions(parse_start(start), days)
    except CalendarError as exc:
        raise BadInput(str(exc)) from None
    target = check_out(out)
    per_session = [chosen[i % len(chosen)] for i in range(len(found))]
    env = {"OPTBOT_SIM_SEED": str(settings.sim_seed), "OPTBOT_MD_WATCHLIST": settings.md_watchlist}
    return Plan(
        sessions=found,
        regimes=per_session,
        out=target,
        settings=settings,
        seed=settings.sim_seed,
        step_s=step,
        minutes=minutes,
        monitor=monitor,
        overrides=env,
    )
