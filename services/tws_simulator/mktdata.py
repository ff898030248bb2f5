"""Market-data requests: reqMktData (1), cancelMktData (2), reqMarketDataType (59),
reqHistoricalData (20). Enforces line limits (101) and entitlement errors (354/10167).
"""

from __future__ import annotations

from .contracts import ContractQuery, Instrument
from .history import BAR_SECONDS, HistoryError, format_bar_time, parse_duration, parse_end
from .protocol import Out, frame
from .refdata import NO_DEFINITION
from .session import Session
from .ticks import DELAYED, LIVE, Line, quote_frames

NOT_SUBSCRIBED = (
    "Requested market data is not subscribed. Check API status by selecting the Account menu "
    "then under Management choose Market Data Subscription Manager and/or ensure that Account "
    "is set to Master Account in Accounts Panel."
)
DELAYED_INSTEAD = "Requested market data is not subscribed. Displaying delayed market data."


def resolve(s: Session, req_id: int, fields: list[str]) -> Instrument | None:
    """Exactly one instrument for a data request, else error 200 (as TWS answers)."""
    matches = s.sim.universe.match(ContractQuery.from_fields(fields))
    if len(matches) != 1:
        s.error(req_id, 200, NO_DEFINITION)
        return None
    return matches[0]


def req_mkt_data(s: Session, f: list[str]) -> None:
    """reqMktData (msg 1, version 11)."""
    req_id = int(f[2])
    if f[4].upper() == "BAG":
        s.error(req_id, 321, "Error validating request: combos are not supported")
        return
    pos = 15 + (3 if f[15] == "1" else 0)  # optional delta-neutral contract
    snapshot = f[pos + 2] == "1"  # after genericTickList
    inst = resolve(s, req_id, f[3:15])
    if inst is not None:
        open_line(s, req_id, inst, snapshot)


def _delayed(s: Session, req_id: int, symbol: str) -> bool | None:
    """Decide live/delayed for a request; None means refused with error 354."""
    cfg = s.sim.config
    wants_delayed = s.data_type in (3, 4)
    if symbol in cfg.unsubscribed_symbols and not wants_delayed:
        s.error(req_id, 354, NOT_SUBSCRIBED)
        return None
    if symbol in cfg.delayed_only_symbols and not wants_delayed:
        s.error(req_id, 10167, DELAYED_INSTEAD)
        return True
    return wants_delayed or symbol in cfg.unsubscribed_symbols


def open_line(s: Session, req_id: int, inst: Instrument, snapshot: bool) -> None:
    """Start a streaming line (or answer a snapshot) with full current values."""
    if req_id in s.lines:
        s.error(req_id, 322, "Error processing request:-'bW' : cause - Duplicate ticker id")
        return
    if not snapshot and len(s.lines) >= s.sim.config.market_data_lines:
        s.error(req_id, 101, "Max number of tickers has been reached")
        return
    delayed = _delayed(s, req_id, inst.symbol)
    if delayed is None:
        return
    line = Line(req_id, inst, DELAYED if delayed else LIVE, snapshot)
    frames = [
        frame(Out.MARKET_DATA_TYPE, 1, req_id, 3 if delayed else 1),
        frame(Out.TICK_REQ_PARAMS, req_id, 0.01, "9c0001", 3),
    ]
    if not snapshot and s.sim.config.lockstep:
        # Lockstep: a new line's first values come with the next step, like every other
        # change, never inside the round that opened it: a backtest's services would
        # see them at an instant that depends on their event loops (docs/backtest.md).
        s.lines[req_id] = line
        s.send(frames)
        return
    frames += quote_frames(line, s.sim.market, s.sim.pricer, full=True)
    if snapshot:
        frames.append(frame(Out.TICK_SNAPSHOT_END, 1, req_id))
        s.forgotten.add(req_id)
    else:
        s.lines[req_id] = line
    s.send(frames)


def cancel_mkt_data(s: Session, f: list[str]) -> None:
    """cancelMktData (msg 2); unknown ids get error 300 like TWS."""
    req_id = int(f[2])
    if s.lines.pop(req_id, None) is None and req_id not in s.forgotten:
        s.error(req_id, 300, f"Can't find EId with tickerId:{req_id}")


def req_market_data_type(s: Session, f: list[str]) -> None:
    """reqMarketDataType (msg 59): 1 live, 2 frozen, 3 delayed, 4 delayed-frozen."""
    kind = int(f[2])
    if kind not in (1, 2, 3, 4):
        s.error(-1, 321, f"Error validating request: invalid market data type {kind}")
        return
    s.data_type = kind


def req_historical_data(s: Session, f: list[str]) -> None:
    """reqHistoricalData (msg 20): bars on the seeded path, then the range (msg 17)."""
    req_id = int(f[1])
    inst = resolve(s, req_id, f[2:14])
    if inst is None:
        return
    end_text, bar_size, duration_text = f[15], f[16], f[17]
    format_date = int(f[20] or 1)
    bar_seconds = BAR_SECONDS.get(bar_size.strip())
    if inst.is_option:
        s.error(
            req_id,
            162,
            "Historical Market Data Service error message:HMDS query "
            "returned no data: option history is not simulated",
        )
        return
    try:
        if bar_seconds is None:
            raise HistoryError(f"Historical data bar size setting {bar_size!r} is invalid")
        duration = parse_duration(duration_text)
        end = parse_end(end_text, s.sim.market.now())
    except HistoryError as e:
        # 162, not 321: ib_async treats 321 as a warning and would leave the request hanging
        s.error(req_id, 162, f"Historical Market Data Service error message:{e}")
        return
    bars = s.sim.history.bars(inst.symbol, end, duration, bar_seconds)
    fields: list[object] = [
        Out.HISTORICAL_DATA,
        req_id,
        format_bar_time(int(end - duration), 1, 1),
        format_bar_time(int(end), 1, 1),
        len(bars),
    ]
    for b in bars:
        avg = round((b.high + b.low + b.close) / 3, 4)
        fields += [
            format_bar_time(b.time, bar_seconds, format_date),
            b.open,
            b.high,
            b.low,
            b.close,
            b.volume,
            avg,
            max(1, b.volume // 100),
        ]
    s.send([frame(*fields)])
