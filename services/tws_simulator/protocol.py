"""TWS API wire format: 4-byte big-endian length prefix, NUL-terminated fields.

Message ids are named after ib_async's decoder/client tables so a reader can
grep both sides. Layouts that change with the negotiated version take it as an
argument (gates in ``versions.py``).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterable
from enum import IntEnum

from .versions import ADVANCED_ORDER_REJECT

MAX_FRAME = 1 << 20  # a placeOrder is ~2 kB; anything near a MB is garbage
_LEN = struct.Struct(">I")


def server_time(epoch: float) -> str:
    """An instant as this TWS writes it (handshake, execution and completion times):
    ``YYYYMMDD HH:MM:SS UTC``, the zone named, so ib_async needs no TimezoneTWS."""
    return time.strftime("%Y%m%d %H:%M:%S UTC", time.gmtime(epoch))


class In(IntEnum):
    """Client -> server request ids (ib_async client.py)."""

    REQ_MKT_DATA = 1
    CANCEL_MKT_DATA = 2
    PLACE_ORDER = 3
    CANCEL_ORDER = 4
    REQ_OPEN_ORDERS = 5
    REQ_ACCT_DATA = 6
    REQ_EXECUTIONS = 7
    REQ_IDS = 8
    REQ_CONTRACT_DATA = 9
    REQ_AUTO_OPEN_ORDERS = 15
    REQ_ALL_OPEN_ORDERS = 16
    REQ_MANAGED_ACCTS = 17
    REQ_HISTORICAL_DATA = 20
    CANCEL_HISTORICAL_DATA = 25
    REQ_CURRENT_TIME = 49
    REQ_GLOBAL_CANCEL = 58
    REQ_MARKET_DATA_TYPE = 59
    REQ_POSITIONS = 61
    REQ_ACCOUNT_SUMMARY = 62
    CANCEL_ACCOUNT_SUMMARY = 63
    CANCEL_POSITIONS = 64
    START_API = 71
    REQ_POSITIONS_MULTI = 74
    CANCEL_POSITIONS_MULTI = 75
    REQ_ACCOUNT_UPDATES_MULTI = 76
    CANCEL_ACCOUNT_UPDATES_MULTI = 77
    REQ_SEC_DEF_OPT_PARAMS = 78
    REQ_PNL = 92
    CANCEL_PNL = 93
    REQ_COMPLETED_ORDERS = 99


class Out(IntEnum):
    """Server -> client message ids (ib_async decoder.py)."""

    TICK_PRICE = 1
    TICK_SIZE = 2
    ORDER_STATUS = 3
    ERR_MSG = 4
    OPEN_ORDER = 5
    ACCT_VALUE = 6
    PORTFOLIO_VALUE = 7
    ACCT_UPDATE_TIME = 8
    NEXT_VALID_ID = 9
    CONTRACT_DATA = 10
    EXECUTION_DATA = 11
    MANAGED_ACCTS = 15
    HISTORICAL_DATA = 17
    TICK_OPTION_COMPUTATION = 21
    TICK_STRING = 46
    CURRENT_TIME = 49
    CONTRACT_DATA_END = 52
    OPEN_ORDER_END = 53
    ACCT_DOWNLOAD_END = 54
    EXECUTION_DATA_END = 55
    TICK_SNAPSHOT_END = 57
    MARKET_DATA_TYPE = 58
    COMMISSION_REPORT = 59
    POSITION_DATA = 61
    POSITION_END = 62
    ACCOUNT_SUMMARY = 63
    ACCOUNT_SUMMARY_END = 64
    POSITION_MULTI_END = 72
    ACCOUNT_UPDATE_MULTI = 73
    ACCOUNT_UPDATE_MULTI_END = 74
    SEC_DEF_OPT_PARAM = 75
    SEC_DEF_OPT_PARAM_END = 76
    TICK_REQ_PARAMS = 81
    PNL = 94
    COMPLETED_ORDER = 101
    COMPLETED_ORDERS_END = 102


class ProtocolError(Exception):
    """The peer broke framing or the handshake; the connection must close."""


def fmt(value: object) -> str:
    """Render one field the way TWS does (bools as 1/0, None as empty)."""
    if value is None:
        return ""
    if value is True:
        return "1"
    if value is False:
        return "0"
    if isinstance(value, float):
        return repr(round(value, 8))
    return str(value)


def frame(*fields: object) -> bytes:
    """Encode one message: each field NUL-terminated, then length-prefixed."""
    payload = "".join(fmt(f) + "\0" for f in fields).encode()
    return _LEN.pack(len(payload)) + payload


def frame_fields(fields: Iterable[object]) -> bytes:
    """Encode an already-built field list (large messages such as openOrder)."""
    return frame(*fields)


def error_frame(version: int, req_id: int, code: int, text: str) -> bytes:
    """error (msg 4, version 2); advancedOrderRejectJson (empty) from server version 166."""
    if version >= ADVANCED_ORDER_REJECT:
        return frame(Out.ERR_MSG, 2, req_id, code, text, "")
    return frame(Out.ERR_MSG, 2, req_id, code, text)


def prefix(payload: bytes) -> bytes:
    """Length-prefix raw bytes (handshake and pre-encoded tick payloads)."""
    return _LEN.pack(len(payload)) + payload


def frame_length(header: bytes) -> int:
    """Decode and bound-check a 4-byte length header."""
    length: int = _LEN.unpack(header)[0]
    if length > MAX_FRAME:
        raise ProtocolError(f"frame length {length} exceeds {MAX_FRAME}")
    return length


def split_fields(payload: bytes) -> list[str]:
    """Split a message payload into its string fields (trailing NUL dropped)."""
    text = payload.decode(errors="replace")
    fields = text.split("\0")
    if fields and fields[-1] == "":
        fields.pop()
    return fields


def parse_version_range(payload: bytes) -> tuple[int, int]:
    """Parse the handshake "v157..178[ options]" into (min, max)."""
    text = payload.decode(errors="replace").strip()
    if not text.startswith("v"):
        raise ProtocolError(f"bad version string {text[:40]!r}")
    spec = text[1:].split(" ", 1)[0]
    lo, sep, hi = spec.partition("..")
    try:
        low = int(lo)
        high = int(hi) if sep else low
    except ValueError as e:
        raise ProtocolError(f"bad version string {text[:40]!r}") from e
    return low, high
