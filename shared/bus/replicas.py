"""Order-path writes wait for a replica (``WAIT 1 <ms>``) when Redis runs behind Sentinel.

Redis replicates asynchronously: a write the primary acknowledged but had not yet
sent to its replica is gone once Sentinel promotes that replica. So an order
request, an order event or a journal write is followed by ``WAIT`` on the same
connection (one pipeline), and only then counts as done. WAIT counts the writes
of its own connection, which is why it rides in the writer's pipeline and never
goes out on its own. With no replica answering in time the write stands on the
primary alone (trading goes on) and ``replica_wait_short`` is logged.
"""

from __future__ import annotations

from typing import Any

from shared.contract import ORDERS_EVENTS, ORDERS_REQUESTS
from shared.logs import get_logger
from shared.settings import Settings

log = get_logger("optbot.bus.replicas")

ORDER_PATH_STREAMS = frozenset({ORDERS_REQUESTS, ORDERS_EVENTS})


class ReplicaWait:
    """Adds ``WAIT 1 <timeout>`` to a writer's pipeline and checks its answer."""

    def __init__(self, settings: Settings) -> None:
        self.enabled = bool(settings.redis_sentinels)
        self.timeout_ms = settings.redis_replica_wait_ms
        self.waits = 0
        self.short = 0  # waits no replica acknowledged in time

    def applies_to(self, stream: str) -> bool:
        """Whether a write to ``stream`` must reach a replica before it counts."""
        return self.enabled and stream in ORDER_PATH_STREAMS

    def add(self, pipe: Any) -> None:
        """Queue WAIT behind the write already in ``pipe`` (same connection)."""
        pipe.execute_command("WAIT", 1, self.timeout_ms)

    def check(self, acked: Any, what: str) -> bool:
        """True when at least one replica has the write; logs once per short wait."""
        self.waits += 1
        if int(acked) >= 1:
            return True
        self.short += 1
        log.warning("replica_wait_short", what=what, timeout_ms=self.timeout_ms, short=self.short)
        return False
