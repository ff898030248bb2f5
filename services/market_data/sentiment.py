"""Market sentiment from SPY and QQQ trend and the VIX, with hysteresis.

The rule, in plain words (thresholds are settings, ``OPTBOT_SENT_*``):
- trend = the average of SPY's and QQQ's return over the last ``trend_bars`` bars;
- "above" = SPY and QQQ both trade above their ``sma_bars`` moving average
  ("below" = both under it);
- risk-off = the VIX rose ``vix_spike_pct`` % or more over ``vix_bars`` bars, or
  stands at ``vix_panic`` or higher.
Then: risk-off is BEARISH when the trend is negative and NEUTRAL otherwise (never
BULLISH); a trend of at least ``enter_pct`` % with "above" is BULLISH; a trend of
at most -``enter_pct`` % with "below" is BEARISH. Hysteresis: a BULLISH (BEARISH)
market stays so while the trend stays above ``exit_pct`` % (below -``exit_pct`` %),
and a new state is adopted only after ``confirm`` evaluations in a row agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from services.market_data.indicators import pct_from, roc_pct, sma
from shared.schemas import Sentiment
from shared.settings import SentimentSettings


@dataclass(frozen=True)
class SentimentParams:
    """The rule's parameters; built only from ``SentimentSettings`` (its defaults)."""

    trend_bars: int
    sma_bars: int
    enter_pct: float
    exit_pct: float
    vix_bars: int
    vix_spike_pct: float
    vix_panic: float
    confirm: int

    @classmethod
    def from_settings(cls, s: SentimentSettings) -> SentimentParams:
        return cls(
            trend_bars=s.sent_trend_bars,
            sma_bars=s.sent_sma_bars,
            enter_pct=s.sent_enter_pct,
            exit_pct=s.sent_exit_pct,
            vix_bars=s.sent_vix_bars,
            vix_spike_pct=s.sent_vix_spike_pct,
            vix_panic=s.sent_vix_panic,
            confirm=s.sent_confirm,
        )


@dataclass(frozen=True)
class SentimentInputs:
    spy_ret_pct: float
    qqq_ret_pct: float
    trend_pct: float
    spy_vs_sma_pct: float
    qqq_vs_sma_pct: float
    vix: float
    vix_change_pct: float

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 6) for k, v in asdict(self).items()}


def compute_inputs(
    spy: Sequence[float], qqq: Sequence[float], vix: Sequence[float], p: SentimentParams
) -> SentimentInputs | None:
    """The rule's inputs from close series; None until every window is filled."""
    if not (spy and qqq and vix):
        return None
    spy_ret, qqq_ret = roc_pct(spy, p.trend_bars), roc_pct(qqq, p.trend_bars)
    spy_sma = pct_from(spy[-1], sma(spy, p.sma_bars))
    qqq_sma = pct_from(qqq[-1], sma(qqq, p.sma_bars))
    vix_change = roc_pct(vix, p.vix_bars)
    if spy_ret is None or qqq_ret is None or vix_change is None:
        return None
    if spy_sma is None or qqq_sma is None:
        return None
    return SentimentInputs(
        spy_ret_pct=spy_ret,
        qqq_ret_pct=qqq_ret,
        trend_pct=(spy_ret + qqq_ret) / 2.0,
        spy_vs_sma_pct=spy_sma,
        qqq_vs_sma_pct=qqq_sma,
        vix=vix[-1],
        vix_change_pct=vix_change,
    )


def target_state(
    x: SentimentInputs, current: Sentiment | None, p: SentimentParams
) -> tuple[Sentiment, str]:
    """Where the rule points now, with the reason in words."""
    above = x.spy_vs_sma_pct > 0 and x.qqq_vs_sma_pct > 0
    below = x.spy_vs_sma_pct < 0 and x.qqq_vs_sma_pct < 0
    if x.vix_change_pct >= p.vix_spike_pct or x.vix >= p.vix_panic:
        why = f"risk-off: VIX {x.vix:.2f} ({x.vix_change_pct:+.1f}%)"
        if x.trend_pct < 0:
            return Sentiment.BEARISH, f"{why}, trend {x.trend_pct:+.2f}%"
        return Sentiment.NEUTRAL, f"{why}, trend not negative"
    if x.trend_pct >= p.enter_pct and above:
        return Sentiment.BULLISH, f"trend {x.trend_pct:+.2f}% with SPY and QQQ above their averages"
    if x.trend_pct <= -p.enter_pct and below:
        return Sentiment.BEARISH, f"trend {x.trend_pct:+.2f}% with SPY and QQQ below their averages"
    if current is Sentiment.BULLISH and x.trend_pct > p.exit_pct:
        return Sentiment.BULLISH, f"holding: trend {x.trend_pct:+.2f}% still above {p.exit_pct}%"
    if current is Sentiment.BEARISH and x.trend_pct < -p.exit_pct:
        return Sentiment.BEARISH, f"holding: trend {x.trend_pct:+.2f}% still below -{p.exit_pct}%"
    return Sentiment.NEUTRAL, f"no clear trend ({x.trend_pct:+.2f}%)"


@dataclass
class Change:
    state: Sentiment
    previous: Sentiment | None
    reason: str
    inputs: SentimentInputs


class SentimentTracker:
    """Holds the current state; adopts a new one only once it is confirmed."""

    def __init__(self, params: SentimentParams) -> None:
        self.params = params
        self.state: Sentiment | None = None
        self.reason = ""
        self.inputs: SentimentInputs | None = None
        self._candidate: Sentiment | None = None
        self._votes = 0

    def update(self, inputs: SentimentInputs) -> Change | None:
        """Feed one evaluation; returns the change when the state changes."""
        self.inputs = inputs
        target, reason = target_state(inputs, self.state, self.params)
        if target == self.state:
            self._candidate, self._votes = None, 0
            self.reason = reason
            return None
        if target == self._candidate:
            self._votes += 1
        else:
            self._candidate, self._votes = target, 1
        if self.state is not None and self._votes < self.params.confirm:
            return None
        change = Change(target, self.state, reason, inputs)
        self.state, self.reason = target, reason
        self._candidate, self._votes = None, 0
        return change
