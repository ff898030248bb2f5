"""Dispatch table (request msg id -> handler) plus connection and account handlers."""

from __future__ import annotations

from . import mktdata, refdata, trading
from .protocol import In, Out, error_frame, frame
from .session import Handler, Session

IN_USE = "Unable to connect as the client id is already in use. Retry with a unique client id."
LINK_LOST = "Connectivity between IB and Trader Workstation has been lost."
FARM_NOTICES = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)


def start_api(s: Session, f: list[str]) -> None:
    """startApi (msg 71): claim the client id (error 326 if taken), then greet."""
    if s.client_id is not None:
        return
    client_id = int(f[2])
    if not s.sim.claim(s, client_id):
        s.error(-1, 326, IN_USE)
        s.close()
        return
    account = s.sim.account.account_id
    frames = [
        frame(Out.MANAGED_ACCTS, 1, account),
        frame(Out.NEXT_VALID_ID, 1, s.sim.next_order_id),
    ]
    frames += [error_frame(s.version, -1, code, text) for code, text in FARM_NOTICES]
    if s.sim.data_paused:  # as TWS: a client logging on while IB is unreachable hears 1100
        frames.append(error_frame(s.version, -1, 1100, LINK_LOST))
    s.send(frames)


def req_current_time(s: Session, f: list[str]) -> None:
    """reqCurrentTime (msg 49): currentTime (49, version 1), the simulated time in whole
    epoch seconds (TWS sends an integer; ib_async reads it with int())."""
    s.send([frame(Out.CURRENT_TIME, 1, int(s.sim.now()))])


def req_managed_accts(s: Session, f: list[str]) -> None:
    """reqManagedAccts (msg 17)."""
    s.send([frame(Out.MANAGED_ACCTS, 1, s.sim.account.account_id)])


def req_account_updates(s: Session, f: list[str]) -> None:
    """reqAccountUpdates (msg 6): values, portfolio, time, accountDownloadEnd (54)."""
    s.account_updates = f[2] == "1"
    if s.account_updates:
        acct = s.sim.account
        frames = acct.update_frames(s.sim.mark, s.sim.now())
        s.send([*frames, frame(Out.ACCT_DOWNLOAD_END, 1, acct.account_id)])


def req_account_summary(s: Session, f: list[str]) -> None:
    """reqAccountSummary (msg 62): requested tags, then accountSummaryEnd (64)."""
    s.send(s.sim.account.summary_frames(int(f[2]), f[4], s.sim.mark))


def req_positions(s: Session, f: list[str]) -> None:
    """reqPositions (msg 61): positions then positionEnd; later changes are pushed."""
    s.position_updates = True
    s.send(s.sim.account.position_frames())


def cancel_positions(s: Session, f: list[str]) -> None:
    s.position_updates = False


def req_account_updates_multi(s: Session, f: list[str]) -> None:
    """reqAccountUpdatesMulti (msg 76): rows (73) then end (74)."""
    s.send(s.sim.account.multi_frames(int(f[2]), f[4], s.sim.mark))


def req_positions_multi(s: Session, f: list[str]) -> None:
    """reqPositionsMulti (msg 74): positionMultiEnd (72) only; model portfolios are empty."""
    s.send([frame(Out.POSITION_MULTI_END, 1, int(f[2]))])


def req_pnl(s: Session, f: list[str]) -> None:
    """reqPnL (msg 92): one pnl (94) now and after every fill."""
    req_id = int(f[1])
    s.pnl_req_ids.add(req_id)
    s.send([s.sim.account.pnl_frame(req_id, s.sim.mark)])


def cancel_pnl(s: Session, f: list[str]) -> None:
    s.pnl_req_ids.discard(int(f[1]))


def ignore(s: Session, f: list[str]) -> None:
    """Requests that need no answer from a simulator (cancels, log level, auto-bind)."""


HANDLERS: dict[int, Handler] = {
    In.START_API: start_api,
    In.REQ_MKT_DATA: mktdata.req_mkt_data,
    In.CANCEL_MKT_DATA: mktdata.cancel_mkt_data,
    In.REQ_MARKET_DATA_TYPE: mktdata.req_market_data_type,
    In.REQ_HISTORICAL_DATA: mktdata.req_historical_data,
    In.CANCEL_HISTORICAL_DATA: ignore,
    In.REQ_CONTRACT_DATA: refdata.req_contract_details,
    In.REQ_SEC_DEF_OPT_PARAMS: refdata.req_sec_def_opt_params,
    In.PLACE_ORDER: trading.place_order,
    In.CANCEL_ORDER: trading.cancel_order,
    In.REQ_OPEN_ORDERS: trading.req_open_orders,
    In.REQ_ALL_OPEN_ORDERS: trading.req_all_open_orders,
    In.REQ_COMPLETED_ORDERS: trading.req_completed_orders,
    In.REQ_EXECUTIONS: trading.req_executions,
    In.REQ_IDS: trading.req_ids,
    In.REQ_GLOBAL_CANCEL: trading.req_global_cancel,
    In.REQ_AUTO_OPEN_ORDERS: ignore,
    In.REQ_CURRENT_TIME: req_current_time,
    In.REQ_MANAGED_ACCTS: req_managed_accts,
    In.REQ_ACCT_DATA: req_account_updates,
    In.REQ_ACCOUNT_SUMMARY: req_account_summary,
    In.CANCEL_ACCOUNT_SUMMARY: ignore,
    In.REQ_POSITIONS: req_positions,
    In.CANCEL_POSITIONS: cancel_positions,
    In.REQ_ACCOUNT_UPDATES_MULTI: req_account_updates_multi,
    In.CANCEL_ACCOUNT_UPDATES_MULTI: ignore,
    In.REQ_POSITIONS_MULTI: req_positions_multi,
    In.CANCEL_POSITIONS_MULTI: ignore,
    In.REQ_PNL: req_pnl,
    In.CANCEL_PNL: cancel_pnl,
    14: ignore,  # setServerLogLevel
}
