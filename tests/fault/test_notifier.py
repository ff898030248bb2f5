"""The gateway goes away longer than the alert threshold: the trader hears it once.

Redis, the simulator, the adapter and the notifier as real processes; the notifier
delivers to a JSON webhook on loopback. The simulator restarts with a downtime
longer than ``OPTBOT_ALERT_GATEWAY_DOWN_S``: exactly one alert, one recovery that
says how long it lasted, and no duplicate when the notifier itself restarts after.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from shared.contract import SYS_ALERTS
from shared.schemas import Alert, AlertSeverity
from tests.conftest import redis_binary
from tests.fault.conftest import fault_root, shutdown
from tests.fault.harness import SECRETS, FaultSystem, wait_for
from tests.notifier.helpers import add
from tests.notifier.receivers import JsonReceiver

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

NAMES = ("gateway_adapter", "notifier")
THRESHOLD_S = 1.5
DOWNTIME_S = 4.0
HOOK_SECRET = "hook/S3CR3T-fault-hook-9e2c"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def receiver() -> AsyncIterator[JsonReceiver]:
    r = JsonReceiver(HOOK_SECRET).start()
    yield r
    r.stop()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def system(receiver: JsonReceiver) -> AsyncIterator[FaultSystem]:
    s = FaultSystem(
        fault_root("notifier"), redis_binary(),
        alert_urls=receiver.url, alert_gateway_down_s=THRESHOLD_S,
        alert_watch_interval_s=0.2, alert_retry_max_s=1.0,
    )  # fmt: skip
    try:
        await s.start(NAMES)
        await wait_for(lambda: s.all_healthy(NAMES), 30, "adapter and notifier healthy")
        yield s
    finally:
        await shutdown(s)


def _gateway(receiver: JsonReceiver) -> list[str]:
    return [t for t in receiver.titles() if t.endswith("] gateway")]


async def _marker(system: FaultSystem, receiver: JsonReceiver, key: str) -> None:
    """An event through the whole path: everything written before it was handled."""
    await add(system.redis, SYS_ALERTS, Alert(code="marker", severity=AlertSeverity.INFO,
                                              message="marker", key=key))  # fmt: skip
    await wait_for(lambda: f"optbot [INFO] {key}" in receiver.titles(), 15, f"marker {key}")


async def test_gateway_down_when_longer_than_threshold_alerts_once_recovers_once_no_dup_on_restart(
    system: FaultSystem, receiver: JsonReceiver
) -> None:
    assert system.sim is not None
    await wait_for(lambda: system.heartbeat("gateway_adapter"), 20, "adapter heartbeat")
    await wait_for(lambda: _connected(system), 20, "gateway connected before the fault")
    outage = asyncio.create_task(system.sim.restart(downtime=DOWNTIME_S))
    alert_s = await wait_for(lambda: _gateway(receiver), DOWNTIME_S + 10, "the outage alert")
    await outage
    await wait_for(lambda: len(_gateway(receiver)) >= 2, 30, "the recovery message")
    await _marker(system, receiver, "marker:1")
    assert _gateway(receiver) == ["optbot [CRITICAL] gateway", "optbot [RECOVERED] gateway"]
    recovery = next(m for m in receiver.messages() if m["title"] == "optbot [RECOVERED] gateway")
    assert "gateway connected again after " in recovery["message"]
    print(
        f"\nalert after {alert_s:.1f} s of outage; recovery: {recovery['message'].splitlines()[0]}"
    )

    await system.stop("notifier")
    system.spawn("notifier")
    await wait_for(lambda: system.healthy("notifier"), 20, "notifier back")
    await _marker(system, receiver, "marker:2")
    assert len(_gateway(receiver)) == 2  # nothing re-sent by the restarted notifier
    log = system.log_text()
    for secret in (*SECRETS, HOOK_SECRET):
        assert secret not in log


async def _connected(system: FaultSystem) -> bool:
    hb = await system.heartbeat("gateway_adapter")
    return hb.get("ib_state") == "connected"
