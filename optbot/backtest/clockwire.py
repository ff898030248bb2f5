"""The clock stream as the driver writes it and the services' acks as it reads them.

``sys:clock`` carries ``ClockTick(t, seq)`` in the usual envelope; each service RPUSHes
a JSON ``ClockAck(seq, t, next_deadline)`` to its ``sys:clock:ack:{service}`` list once
it has handled the tick and everything it woke has settled (shared/runner.py).
"""

from __future__ import annotations

import msgspec

from shared.contract import SYS_CLOCK, clock_ack_key
from shared.envelope import encode
from shared.schemas import ClockAck, ClockTick

SRC = "backtest/driver"

__all__ = ["SYS_CLOCK", "ack_key", "parse_ack", "tick_fields"]


def tick_fields(t: float, seq: int) -> dict[bytes, bytes]:
    return encode(ClockTick(t=t, seq=seq), SRC)


def ack_key(service: str) -> str:
    return clock_ack_key(service)


def parse_ack(raw: bytes) -> ClockAck:
    return msgspec.json.decode(raw, type=ClockAck)
