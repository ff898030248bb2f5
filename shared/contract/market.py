"""Market data keys: quotes from the adapter, signals and their views from market_data."""

from __future__ import annotations

from typing import Final

from shared.contract.spec import GATEWAY, MARKET_DATA, MONITOR, STRATEGY, Entry, Kind
from shared.contract.values import BarRow, CandidatesHash, SentimentHash
from shared.schemas import Bar, CandidatesSignal, Quote, SentimentSignal

MD_TICKS: Final = "md:ticks"
MD_SIGNALS: Final = "md:signals"
MD_LAST: Final = "md:last:{symbol}"
MD_SENTIMENT: Final = "md:sentiment"
MD_CANDIDATES: Final = "md:candidates"
MD_BARS: Final = "md:bars:{symbol}"


def last_quote_key(symbol: str) -> str:
    """Hash with the latest plain-field quote of ``symbol``."""
    return MD_LAST.format(symbol=symbol)


def bars_key(symbol: str) -> str:
    """List of the last bars of ``symbol`` (JSON rows), oldest first."""
    return MD_BARS.format(symbol=symbol)


ENTRIES: Final = (
    Entry(MD_TICKS, Kind.STREAM, GATEWAY, "sanitized quotes of qualified contracts",
          readers=(MONITOR,), consumers=(MARKET_DATA, STRATEGY), value=(Quote,),
          cap="OPTBOT_MAXLEN_TICKS", scripts=True),
    Entry(MD_SIGNALS, Kind.STREAM, MARKET_DATA, "bars, sentiment changes, candidates",
          readers=(MONITOR,), consumers=(STRATEGY,),
          value=(Bar, SentimentSignal, CandidatesSignal), cap="OPTBOT_MAXLEN_SIGNALS"),
    Entry(MD_LAST, Kind.HASH, GATEWAY, "latest quote of a line, plain fields",
          readers=(MARKET_DATA, STRATEGY, MONITOR), value=(Quote,),
          cap="TTL OPTBOT_GW_LAST_TTL_S after the line closes", scripts=True),
    Entry(MD_SENTIMENT, Kind.HASH, MARKET_DATA, "market sentiment, its inputs and reason",
          readers=(STRATEGY, MONITOR), value=(SentimentHash,), cap="replaced whole"),
    Entry(MD_CANDIDATES, Kind.HASH, MARKET_DATA, "ranked momentum candidates, exclusions",
          readers=(STRATEGY, MONITOR), value=(CandidatesHash,), cap="replaced whole"),
    Entry(MD_BARS, Kind.LIST, MARKET_DATA, "the last bars of a symbol (JSON rows)",
          readers=(MONITOR,), value=(BarRow,), cap="last OPTBOT_MD_BAR_WINDOW"),
)  # fmt: skip
