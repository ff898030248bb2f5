"""A private primary and its replica on loopback, for tests of ``WAIT 1`` writes.

The replica can be stalled (SIGSTOP) so a test can tell a write that waited for it
from one that did not. Both are ``redis-server`` processes in the test's directory.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis as syncredis

from shared.redis_server import RedisHandle, start_redis
from tests.conftest import redis_binary
from tests.helpers import wait_until_sync


@dataclass
class ReplicaPair:
    primary: RedisHandle
    replica: RedisHandle

    @contextmanager
    def replica_stalled(self) -> Iterator[None]:
        """The replica process stopped (it acknowledges nothing) for the block."""
        assert self.replica.process is not None
        os.kill(self.replica.process.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self.replica.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        self.replica.stop()
        self.primary.stop()


def start_pair(root: Path) -> ReplicaPair:
    """Primary, then a replica of it; returns once the link is up."""
    primary = start_redis(redis_binary(), root / "primary", appendonly=False)
    port = primary.url.rsplit(":", 1)[1].split("/")[0]
    replica = start_redis(
        redis_binary(),
        root / "replica",
        appendonly=False,
        extra_args=("--replicaof", "127.0.0.1", port),
    )
    pair = ReplicaPair(primary, replica)
    client = syncredis.Redis.from_url(replica.url, decode_responses=True)
    try:

        def linked() -> bool:
            return client.info("replication").get("master_link_status") == "up"

        wait_until_sync(linked, timeout=10.0, what="replica linked to its primary")
    except BaseException:
        pair.stop()
        raise
    finally:
        client.close()
    return pair
