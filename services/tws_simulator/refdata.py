"""Reference-data requests: reqContractDetails (msg 9) and reqSecDefOptParams (msg 78)."""

from __future__ import annotations

from .contracts import ContractQuery, Instrument
from .protocol import Out, frame
from .session import Session
from .versions import FRACTIONAL_SIZE_SUPPORT, SIZE_RULES

NO_DEFINITION = "No security definition has been found for the request"


def details_frame(version: int, req_id: int, inst: Instrument, under: Instrument | None) -> bytes:
    """contractDetails (msg 10) for the negotiated version.

    Before SIZE_RULES (164) it carries a version field (8) and mdSizeMultiplier;
    163 alone has sizeMinTick; from 164 minSize, sizeIncrement, suggestedSizeIncrement.
    """
    opt = inst.is_option
    stock_type = "" if inst.sec_type == "IND" else ("ETF" if inst.etf else "COMMON")
    order_types = "LMT,MKT" if inst.sec_type != "IND" else ""
    head: list[object] = [Out.CONTRACT_DATA]
    if version < SIZE_RULES:
        head.append(8)
    head += [
        req_id,
        inst.symbol,
        inst.sec_type,
        inst.expiry,
        inst.strike,
        inst.right,
        inst.exchange,
        inst.currency,
        inst.local_symbol,
        inst.trading_class,  # marketName
        inst.trading_class,
        inst.con_id,
        0.01,
    ]
    if version < SIZE_RULES:
        head.append(1)  # mdSizeMultiplier: our sizes are already in shares
    body: list[object] = [
        inst.multiplier,
        order_types,
        "SMART,AMEX,CBOE,ISE,PHLX" if opt else "SMART,ARCA,NYSE,NASDAQ",
        1,
        inst.under_con_id,
        inst.long_name,
        inst.primary_exchange,
        inst.expiry[:6],
        "",
        "",
        "",
        "US/Eastern",
        "",
        "",
        "",
        "",
        0,  # no secIds
        1,
        under.symbol if under else "",
        under.sec_type if under else "",
        "26" if opt else "",
        inst.expiry,
        stock_type,
    ]
    if version == FRACTIONAL_SIZE_SUPPORT:
        body.append(1)  # sizeMinTick
    elif version >= SIZE_RULES:
        body += [1, 1, 1 if opt else 100]
    return frame(*head, *body)


def req_contract_details(s: Session, f: list[str]) -> None:
    """reqContractDetails (msg 9, version 8): every match, then contractDetailsEnd (52)."""
    req_id = int(f[2])
    query = ContractQuery.from_fields(f[3:15])
    matches = s.sim.universe.match(query)
    if not matches:
        s.error(req_id, 200, NO_DEFINITION)
        return
    universe = s.sim.universe
    frames = [
        details_frame(
            s.version, req_id, inst, universe.underlying(inst.symbol) if inst.is_option else None
        )
        for inst in matches
    ]
    frames.append(frame(Out.CONTRACT_DATA_END, 1, req_id))
    s.send(frames)


def req_sec_def_opt_params(s: Session, f: list[str]) -> None:
    """reqSecDefOptParams (msg 78): one SMART row (75), then End (76)."""
    req_id, symbol = int(f[1]), f[2].upper()
    under = s.sim.universe.underlying(symbol)
    chain = s.sim.universe.chain(symbol)
    frames = []
    if under is not None and chain is not None:
        frames.append(
            frame(
                Out.SEC_DEF_OPT_PARAM,
                req_id,
                "SMART",
                under.con_id,
                symbol,
                "100",
                len(chain.expirations),
                *chain.expirations,
                len(chain.strikes),
                *chain.strikes,
            )
        )
    frames.append(frame(Out.SEC_DEF_OPT_PARAM_END, req_id))
    s.send(frames)
