"""The IB connection: connect with backoff, client-id conflicts, connectivity codes.

One ``ib_async.IB`` per adapter. Errors arrive on ``ib.errorEvent``; this module
turns connection-level codes into state transitions and hands everything else to
listeners (subscriptions, qualification, orders) or to ``gw:status``.

After every logon the state is SYNCING until the reconcile (what IB did while we
were away) has run; only then CONNECTED. A failed sync is DEGRADED with its reason
and retried; after ``SYNC_ATTEMPTS`` failures the link is dropped and rebuilt.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from contextlib import contextmanager
from typing import Any

from ib_async import IB
from ib_async import __version__ as ib_async_version
from redis.exceptions import RedisError

from services.gateway_adapter.framing import SlicedFraming, install_sliced_framing
from services.gateway_adapter.status import StatusReporter
from shared.aio import sleep_or_stop, wait_any
from shared.ib_schedule import restart_note
from shared.logs import get_logger
from shared.schemas import ConnState, DataType
from shared.settings import ClientIdPolicy, Settings

log = get_logger("optbot.gateway_adapter.connection")

ErrorListener = Callable[[int, int, str, Any], bool]  # (reqId, code, text, contract) -> handled
Reconcile = Callable[[], Awaitable[str]]  # after logon: a summary, or raises a SYNC_ERRORS
SYNC_ERRORS = (ConnectionError, TimeoutError, RedisError)
SYNC_ATTEMPTS = 5  # failed syncs on one link before it is dropped and rebuilt

IN_USE = 326  # "Unable to connect as the client id is already in use"
LOST, RESTORED_DATA_LOST, RESTORED_DATA_KEPT = 1100, 1101, 1102
FARM_DOWN = frozenset({2103, 2105, 2157})  # market data / HMDS / sec-def farm broken
FARM_OK = frozenset({2104, 2106, 2158})  # ... connection is OK
DATA_TYPE_CODES = {
    DataType.LIVE: 1,
    DataType.FROZEN: 2,
    DataType.DELAYED: 3,
    DataType.DELAYED_FROZEN: 4,
}


class ClientIdInUse(Exception):
    """IB answered 326: another connection uses our client id."""


class IbConnection:
    """Owns the IB client; ``run`` keeps it connected until the term ends."""

    def __init__(self, settings: Settings, status: StatusReporter) -> None:
        self.ib = IB()
        if settings.clock == "sim":
            # A backtest: the simulator in lockstep paces nothing, and ib_async's own
            # throttle (45 requests a wall second) would cap the run at ~20 steps a second
            # (each step is two currentTime round trips). Live, IB's pacing stays.
            self.ib.client.MaxRequests = 0
        self.status = status
        self._s = settings
        self.client_id = settings.ib_client_id
        self.listeners: list[ErrorListener] = []
        self.on_data_lost: Callable[[], None] | None = None  # 1101: resubscribe
        self._lost = asyncio.Event()
        self._conflict: asyncio.Future[str] | None = None
        self._link_lost: str | None = None  # IB's 1100 text until 1101/1102
        self.synced = False  # this link's reconcile is done: CONNECTED is allowed
        self.sync_failures = 0
        self._unsynced = ""  # why the last sync ended without success
        self._watched: dict[int, list[tuple[int, str]]] = {}  # id(contract) -> IB errors
        self.connects = 0
        self.conflicts = 0
        self.ib.errorEvent += self._on_error
        self.ib.disconnectedEvent += self._lost.set
        self.framing: SlicedFraming | None = None
        if settings.ib_decode_slice:
            self.framing = install_sliced_framing(self.ib.client, settings.ib_decode_slice)
            if self.framing is None:
                log.warning("sliced_framing_unavailable", ib_async=ib_async_version)

    @property
    def connected(self) -> bool:
        return self.ib.isConnected()

    # --- errors ---------------------------------------------------------------------------

    @contextmanager
    def watch(self, contracts: list[Any]) -> Any:
        """Collect IB errors about these contract objects while the block runs."""
        errors: dict[int, list[tuple[int, str]]] = {id(c): [] for c in contracts}
        self._watched.update(errors)
        try:
            yield errors
        finally:
            for key in errors:
                self._watched.pop(key, None)

    def _on_error(self, req_id: int, code: int, text: str, contract: Any) -> None:
        if code == IN_USE:
            if self._conflict is not None and not self._conflict.done():
                self._conflict.set_result(text)
            return
        if self._connectivity(code, text):
            return
        if contract is not None and id(contract) in self._watched:
            self._watched[id(contract)].append((code, text))
            return
        for listener in self.listeners:
            if listener(req_id, code, text, contract):
                return
        if code in FARM_OK or code == 2107:  # farm OK / HMDS inactive notices: log only
            log.debug("ib_notice", code=code, text=text)
            return
        self.status.error(
            code, text, req_id=req_id, severity="warning" if code >= 2100 else "error"
        )

    def _connectivity(self, code: int, text: str) -> bool:
        """IB connectivity codes become state transitions (and IbError entries)."""
        state = self.status.state
        if code == LOST or code in FARM_DOWN:
            self.status.error(code, text, severity="warning")
            if code == LOST:  # also while still setting up: logon must not say "connected"
                self._link_lost = f"{code}: {text}"
            if state in (ConnState.CONNECTED, ConnState.DEGRADED):
                self.status.transition(ConnState.DEGRADED, f"{code}: {text}")
            return True
        if code in (RESTORED_DATA_LOST, RESTORED_DATA_KEPT):
            self._link_lost = None
            self.status.error(code, text, severity="info")
            if code == RESTORED_DATA_LOST and self.on_data_lost is not None:
                self.on_data_lost()
            if state is ConnState.DEGRADED and self.synced:
                self.status.transition(ConnState.CONNECTED, f"{code}: {text}")
            return True
        back = state is ConnState.DEGRADED and self.synced and "1100" not in self.status.reason
        if code in FARM_OK and back:
            self.status.transition(ConnState.CONNECTED, f"{code}: {text}")
            return True
        return False

    # --- connecting -----------------------------------------------------------------------

    async def connect_once(self) -> None:
        """One attempt; raises ClientIdInUse on 326, OSError/TimeoutError/ConnectionError else."""
        self._lost.clear()
        self._link_lost = None  # a new session: IB repeats 1100 if the link is still down
        self._conflict = asyncio.get_running_loop().create_future()
        attempt = asyncio.ensure_future(
            self.ib.connectAsync(
                self._s.ib_host,
                self._s.ib_port,
                clientId=self.client_id,
                timeout=self._s.ib_connect_timeout_s,
            )
        )
        try:
            await asyncio.wait({attempt, self._conflict}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not attempt.done():
                attempt.cancel()
                with contextlib.suppress(BaseException):
                    await attempt
        if self._conflict.done():
            self.ib.disconnect()
            raise ClientIdInUse(self._conflict.result())
        self._conflict.cancel()
        attempt.result()

    def _after_conflict(self) -> None:
        """Policy on 326: ``wait`` keeps the id, ``next`` walks up to OPTBOT_IB_CLIENT_ID_MAX."""
        if self._s.ib_client_id_policy is ClientIdPolicy.NEXT:
            top = self._s.ib_client_id_max
            self.client_id = self.client_id + 1 if self.client_id < top else self._s.ib_client_id

    async def run(
        self,
        term: asyncio.Event,
        on_connected: Callable[[], Awaitable[None]],
        reconcile: Reconcile | None = None,
    ) -> None:
        """Stay connected until ``term``: reconnect with exponential backoff and jitter."""
        delay = self._s.ib_reconnect_min_s
        while not term.is_set():
            if await self._attempt(term, on_connected, reconcile or _nothing_to_sync):
                delay = self._s.ib_reconnect_min_s
                if term.is_set():
                    break
            else:
                delay = min(delay * 2, self._s.ib_reconnect_max_s)
            await sleep_or_stop(term, delay * random.uniform(0.5, 1.0))
        self.disconnect("stopping")
        if self.status.state is not ConnState.DISCONNECTED:  # else the last word stays CONNECTED
            self.status.transition(ConnState.DISCONNECTED, "term over (stopping or lease lost)")

    async def _attempt(
        self, term: asyncio.Event, on_connected: Callable[[], Awaitable[None]], sync: Reconcile
    ) -> bool:
        """Connect, set up, sync, serve until the link drops; False when the connect failed."""
        s, info = self._s, self.status.info
        self.synced = False
        info.client_id = self.client_id
        self.status.transition(ConnState.CONNECTING, f"{s.ib_host}:{s.ib_port}")
        try:
            await self.connect_once()
        except ClientIdInUse as exc:
            self._report_conflict(str(exc))
            return False
        except (OSError, TimeoutError, ConnectionError) as exc:
            note = restart_note(time.time(), self._s)
            self.status.transition(ConnState.DISCONNECTED, f"connect failed: {exc!r}"[:240] + note)
            return False
        self.connects += 1
        info.server_version = self.ib.client.serverVersion()
        accounts = self.ib.managedAccounts()
        info.account = accounts[0] if accounts else ""
        info.data_type = s.ib_market_data_type
        try:
            self.ib.reqMarketDataType(DATA_TYPE_CODES[info.data_type])
            await on_connected()
        except ConnectionError as exc:
            self.status.transition(ConnState.DISCONNECTED, f"lost while setting up: {exc}")
            return True
        summary = await self._sync(term, sync)
        if summary is None:  # the link or the term ended first
            if not term.is_set():
                self.status.transition(ConnState.DISCONNECTED, self._unsynced)
            return True
        if self._link_lost:  # 1100 arrived while we were setting up: not serving yet
            self.status.transition(ConnState.DEGRADED, f"logged on, {self._link_lost}")
        else:
            self.status.transition(ConnState.CONNECTED, f"logged on, synced: {summary}")
        await wait_any(self._lost, term)
        if not term.is_set():
            note = restart_note(time.time(), self._s)  # expected: not an outage
            self.status.transition(ConnState.DISCONNECTED, "connection lost" + note)
        return True

    async def _sync(self, term: asyncio.Event, sync: Reconcile) -> str | None:
        """SYNCING until ``sync`` succeeds (its summary); None when the link or term ends.

        A failure is DEGRADED with the reason, retried with backoff; after
        ``SYNC_ATTEMPTS`` the link is dropped so the reconnect loop starts afresh.
        """
        self.status.transition(ConnState.SYNCING, "reconciling executions, orders, positions")
        self._unsynced = "lost while syncing"
        delay = self._s.ib_reconnect_min_s
        for attempt in range(1, SYNC_ATTEMPTS + 1):
            if term.is_set() or self._lost.is_set():
                return None
            try:
                summary = await sync()
            except SYNC_ERRORS as exc:
                self.sync_failures += 1
                if self._lost.is_set() or not self.connected:
                    return None
                what = f"sync failed ({attempt}/{SYNC_ATTEMPTS}): {exc!r}"[:300]
                log.warning("sync_failed", attempt=attempt, error=repr(exc))
                if attempt == SYNC_ATTEMPTS:
                    self.status.transition(ConnState.DEGRADED, f"{what}; reconnecting")
                    break
                self.status.transition(ConnState.DEGRADED, f"{what}; retry in {delay:.1f}s")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wait_any(self._lost, term), delay)
                delay = min(delay * 2, self._s.ib_reconnect_max_s)
                continue
            self.synced = True
            return summary
        self._unsynced = f"sync failed {SYNC_ATTEMPTS} times: link dropped to start afresh"
        self.disconnect(self._unsynced)
        return None

    def _report_conflict(self, text: str) -> None:
        self.conflicts += 1
        used = self.client_id
        self._after_conflict()
        policy = self._s.ib_client_id_policy.value
        reason = (
            f"client id {used} already in use (326); policy {policy}: next try id {self.client_id}"
        )
        self.status.error(IN_USE, f"{text} (client id {used})", severity="error")
        self.status.transition(ConnState.DISCONNECTED, reason)

    def disconnect(self, reason: str) -> None:
        """Drop the IB socket now (clean stop, lost lease or crash)."""
        if self.ib.isConnected() or self.ib.client.connState != self.ib.client.DISCONNECTED:
            log.info("ib_disconnect", reason=reason)
            self.ib.disconnect()


async def _nothing_to_sync() -> str:
    return "nothing to sync"
