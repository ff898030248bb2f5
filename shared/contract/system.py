"""System keys: heartbeats, alerts and dead letters, which every service touches."""

from __future__ import annotations

from typing import Final

from shared.contract.spec import (
    GATEWAY,
    MARKET_DATA,
    MONITOR,
    NOTIFIER,
    OPERATOR,
    SERVICES,
    SIMULATOR,
    STRATEGY,
    Entry,
    Kind,
)
from shared.schemas import Alert, ClockAck, ClockTick

SYS_ALERTS: Final = "sys:alerts"
SYS_DLQ: Final = "sys:dlq"
HEARTBEAT: Final = "svc:{service}"
HEARTBEAT_INSTANCE: Final = "svc:{service}:{instance}"  # standby and per-instance beats
ON_THE_BUS: Final = tuple(s for s in SERVICES if s != SIMULATOR)  # it speaks TWS, not Redis
SYS_CLOCK: Final = "sys:clock"
SYS_CLOCK_ACK: Final = "sys:clock:ack:{service}"
# Services on simulated time (OPTBOT_CLOCK=sim): each follows sys:clock and acks each tick.
ON_THE_CLOCK: Final = (GATEWAY, MARKET_DATA, STRATEGY)


def service_key(name: str) -> str:
    """Heartbeat hash of a service; it expires when the service dies."""
    return HEARTBEAT.format(service=name)


def standby_key(name: str, instance: str) -> str:
    """Heartbeat hash of a standby instance of an active/standby service (the adapter)."""
    return HEARTBEAT_INSTANCE.format(service=name, instance=f"standby:{instance}")


def clock_ack_key(name: str) -> str:
    """The list a service RPUSHes its ``ClockAck`` to; the backtest driver pops it."""
    return SYS_CLOCK_ACK.format(service=name)


def _heartbeats(name: str) -> tuple[Entry, ...]:
    """Each service writes its own beat; every service reads all (``optbot health``)."""
    others = tuple(s for s in SERVICES if s != name)
    return (
        Entry(service_key(name), Kind.HASH, name, "heartbeat: pid, version, loop, lag",
              readers=others, cap="TTL OPTBOT_HEARTBEAT_TTL_S"),
        Entry(service_key(name) + ":{instance}", Kind.HASH, name,
              "heartbeat of a standby / other instance", readers=others,
              cap="TTL OPTBOT_HEARTBEAT_TTL_S"),
    )  # fmt: skip


ENTRIES: Final = (
    # Every service raises alerts; the notifier delivers them (and raises its own).
    Entry(SYS_ALERTS, Kind.STREAM, NOTIFIER, "what needs a human: severity, key, state",
          readers=(MONITOR,), consumers=(NOTIFIER,), senders=ON_THE_BUS,
          value=(Alert,), cap="OPTBOT_MAXLEN_SIGNALS", inbox=True),
    # Every consumer parks what it cannot handle; the operator looks after it.
    Entry(SYS_DLQ, Kind.STREAM, OPERATOR, "entries no handler could take, with the reason",
          readers=(MONITOR, NOTIFIER), senders=ON_THE_BUS, cap="OPTBOT_MAXLEN_DLQ",
          inbox=True),
    *(e for name in SERVICES for e in _heartbeats(name)),
    # Simulated sessions: the backtest driver (``optbot backtest``, as the operator) steps
    # time; each service on the clock follows with a plain XREAD and acks every tick.
    Entry(SYS_CLOCK, Kind.STREAM, OPERATOR,
          "backtest only: simulated time steps (t, seq) from the backtest driver",
          readers=(*ON_THE_CLOCK, MONITOR),  # the monitor lists every stream's length
          value=(ClockTick,), cap="OPTBOT_MAXLEN_SIGNALS"),
    *(Entry(clock_ack_key(name), Kind.LIST, name,
            "backtest only: the service's ack of each sys:clock tick (JSON)",
            readers=(OPERATOR,), value=(ClockAck,), cap="popped by the driver")
      for name in ON_THE_CLOCK),
)  # fmt: skip
