"""The default regime schedule shows the whole loop in minutes (issue 15, item 4).

Drives the simulator's market with the default settings' schedule over simulated
time (no wall clock) and runs market_data's own sentiment rule on the same
one-minute bars a client would get (history, then the live minutes).
"""

from __future__ import annotations

import datetime as dt

import pytest

from services.market_data.sentiment import SentimentParams, SentimentTracker, compute_inputs
from services.tws_simulator import Simulator
from services.tws_simulator.history import History
from services.tws_simulator.market import Market
from services.tws_simulator.regimes import Regime
from services.tws_simulator.schedule import DEMO_PHASES, parse_schedule, phase_at
from services.tws_simulator.service import config_from
from shared.schemas import Sentiment
from shared.settings import Settings

START = dt.datetime(2026, 1, 5, 15, 0, tzinfo=dt.UTC).timestamp()


def _sentiment_path(market: Market, minutes: float) -> list[tuple[float, Sentiment]]:
    """(simulated seconds, state) at every change, evaluated every 5 s like market_data."""
    history = History(market.seed, market)
    settings = Settings()
    tracker = SentimentTracker(SentimentParams.from_settings(settings))
    every = round(settings.md_eval_interval_s / market.step_seconds)
    changes: list[tuple[float, Sentiment]] = []
    for i in range(round(minutes * 60 / market.step_seconds)):
        market.step()
        if i % every:
            continue
        now = market.now()
        closes = {
            s: [b.close for b in history.bars(s, now + 1, 7200, 60)] for s in ("SPY", "QQQ", "VIX")
        }
        inputs = compute_inputs(closes["SPY"], closes["QQQ"], closes["VIX"], tracker.params)
        assert inputs is not None
        change = tracker.update(inputs)
        if change is not None:
            changes.append((now - START, change.state))
    return changes


def test_default_schedule_when_run_turns_sentiment_both_ways_within_minutes() -> None:
    cfg = config_from(Settings())
    market = Market(
        cfg.seed, cfg.step_seconds, START, Regime.CHOPPY, 0, schedule=parse_schedule(cfg.schedule)
    )
    changes = _sentiment_path(market, 5.0)
    states = [s for _, s in changes]
    assert Sentiment.BULLISH in states and Sentiment.BEARISH in states, changes
    first_bull = next(t for t, s in changes if s is Sentiment.BULLISH)
    first_bear = next(t for t, s in changes if s is Sentiment.BEARISH)
    # bullish in the first rally (150 s), bearish in the sell-off that follows (180 s)
    assert first_bull < 90 and 150 < first_bear < 300, changes


def test_schedule_when_off_holds_the_starting_regime() -> None:
    cfg = config_from(Settings(sim_schedule="off", sim_regime="trending_up"))
    market = Market(
        cfg.seed,
        60.0,
        START,
        Regime(cfg.initial_regime),
        cfg.regime_period,
        schedule=parse_schedule(cfg.schedule),
    )
    for _ in range(24 * 60):
        market.step()
        assert market.regime is Regime.TRENDING_UP


def test_force_regime_when_schedule_runs_pins_until_resumed() -> None:
    sim = Simulator(config_from(Settings(sim_port=0, sim_control_port=0, sim_tick_interval_s=0)))
    assert sim.status()["schedule"] == "running"
    sim.force_regime("trending_up")
    sim.step(int(DEMO_PHASES[0].seconds + DEMO_PHASES[1].seconds) + 5)
    assert sim.market.regime is Regime.TRENDING_UP and sim.status()["schedule"] == "pinned"
    assert sim.market.phase is DEMO_PHASES[0]  # a forced trend keeps the demo's strength
    elapsed = sim.market.now() - sim.market.start_epoch
    assert sim.force_regime("schedule") is phase_at(DEMO_PHASES, elapsed).regime
    assert sim.status()["schedule"] == "running"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("sideways:60", "expected regime:seconds"),
        ("choppy", "expected regime:seconds"),
        ("choppy:0", "seconds must be"),
        ("choppy:abc", "expected regime:seconds"),
    ],
)
def test_parse_schedule_when_malformed_names_the_phase(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_schedule(text)
