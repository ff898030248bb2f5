"""Watch: derives what needs a human from the streams and writes it to sys:alerts.

Inputs: ``gw:status`` (connection states, IB errors), ``sys:control`` (the risk
states the strategy applied, who and why), ``orders:events`` (fills, optional), and on a timer the
heartbeats (``svc:*``) and ``sys:dlq``. Timers (gateway down since, IB 1100 since,
services seen) live in ``notifier:watch`` so they survive a restart.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from services.notifier.conditions import Conditions
from services.notifier.text import duration
from shared.contract import STRATEGY_POSITIONS, SYS_DLQ, service_key
from shared.envelope import Message
from shared.ib_schedule import Restart, scheduled_restart
from shared.roster import expected_services
from shared.schemas import (
    AlertSeverity,
    ConnState,
    GatewayStatus,
    IbError,
    OrderEvent,
    OrderEventKind,
    RiskState,
    RiskStateChange,
)
from shared.settings import Settings

CRIT, WARN, INFO = AlertSeverity.CRITICAL, AlertSeverity.WARNING, AlertSeverity.INFO

# IB codes that need a human, with what to tell them (IB's own text is added).
IB_EVENTS: dict[int, tuple[AlertSeverity, str]] = {
    1101: (WARN, "IB connectivity restored but market data was lost; the adapter resubscribes"),
    326: (CRIT, "IB client id already in use: another program holds our client id"),
    10197: (CRIT, "competing IB session: market data stops while another login is active"),
    354: (WARN, "no market-data permission for a requested contract"),
    10089: (WARN, "market data needs an additional subscription"),
}
# Logged on but not serving: the reconcile runs (syncing) or failed / IB's link is down.
LOGGED_ON = frozenset({ConnState.SYNCING, ConnState.DEGRADED})
HELD_CONTRACT_CODE = 200  # "No security definition": serious only for a held contract
LOST, RESTORED_LOST, RESTORED_KEPT = 1100, 1101, 1102
LOGIN_MESSAGE = (
    "gateway not back {duration} after its scheduled restart: approve the IB login on "
    "your phone (IBKR Mobile), or check IBC / the gateway container"
)
RISK_MESSAGES = {
    RiskState.HALTED: (CRIT, "trading HALTED"),
    RiskState.REDUCING: (WARN, "trading REDUCING (exits only)"),
}


class Watcher:
    def __init__(self, redis: aioredis.Redis, settings: Settings, conditions: Conditions) -> None:
        self.redis = redis
        self.settings = settings
        self.c = conditions
        self.me = "notifier"

    # --- gw:status -------------------------------------------------------------------

    async def on_status(self, msg: Message[Any]) -> None:
        body = msg.body
        at = msg.ts / 1e9
        if isinstance(body, GatewayStatus):
            await self._gateway(body, at)
        elif isinstance(body, IbError):
            await self._ib_error(body, at)

    async def _gateway(self, body: GatewayStatus, at: float) -> None:
        if body.state is ConnState.STANDBY:
            return  # a hot standby instance says nothing about the active connection
        if body.state is ConnState.CONNECTED:
            await self.c.remember("gateway_down", None)
            await self.c.remember("ib_lost", None)
            await self.c.close_alert(
                "gateway", "gateway", "gateway connected again after {duration}"
            )
            await self.c.close_alert("ib:1100", "ib_1100", "IB connectivity back after {duration}")
            return
        down = self.c.state.get("gateway_down")
        if down:  # still down since then; once logged on, say why it is not serving yet
            if body.state in LOGGED_ON and down.get("reason") != body.reason[:300]:
                latest = {"state": body.state.value, "reason": body.reason[:300]}
                await self.c.remember("gateway_down", {**down, **latest})
            return
        restart = scheduled_restart(at, self.settings)
        await self.c.remember("gateway_down", {"since": at, "state": body.state.value,
                                               "reason": body.reason[:300],
                                               "scheduled": restart})  # fmt: skip
        if restart is not None:
            grace = duration(self.settings.ib_login_grace_s)
            await self.c.event(
                "gateway:restart", "gateway_restart", INFO,
                f"IB Gateway {restart} scheduled restart: disconnected as planned, expected "
                f"back within {grace}" + (" (the weekly login needs your approval)"
                                          if restart == Restart.WEEKLY else ""),
            )  # fmt: skip

    async def _ib_error(self, body: IbError, at: float) -> None:
        code = body.code
        if code == LOST:
            if "ib_lost" not in self.c.state:
                await self.c.remember("ib_lost", {"since": at, "message": body.message[:300]})
            return
        if code in (RESTORED_LOST, RESTORED_KEPT):
            await self.c.remember("ib_lost", None)
            how = "market data lost" if code == RESTORED_LOST else "market data kept"
            await self.c.close_alert(
                "ib:1100", "ib_1100", f"IB connectivity restored after {{duration}} ({how})"
            )
        if code in IB_EVENTS:
            severity, what = IB_EVENTS[code]
            key = f"ib:{code}:{body.symbol}" if body.symbol else f"ib:{code}"
            await self.c.event(key, f"ib_{code}", severity, f"{what}: {body.message}",
                               {"code": str(code), "symbol": body.symbol})  # fmt: skip
        elif code == HELD_CONTRACT_CODE and body.symbol and await self._held(body.symbol):
            await self.c.event(
                f"ib:200:{body.symbol}", "ib_200", CRIT,
                f"IB does not know a HELD contract {body.symbol}: {body.message}",
                {"code": "200", "symbol": body.symbol},
            )  # fmt: skip

    async def _held(self, symbol: str) -> bool:
        keys: Any = await self.redis.hkeys(STRATEGY_POSITIONS)
        held = {k.decode() for k in keys}
        return symbol in held or any(k.split(" ")[0] == symbol for k in held)

    # --- sys:control -----------------------------------------------------------------

    async def on_control(self, msg: Message[Any]) -> None:
        """Alert on the state the strategy applied (``risk.state``), not on requests:
        a request the strategy never applied changed nothing."""
        body = msg.body
        if not isinstance(body, RiskStateChange) or not body.changed:
            return
        state = body.state.value
        if self.c.state.get("risk") == state:
            return  # the same change seen twice (a redelivery)
        await self.c.remember("risk", state)
        by = f"by {body.who or 'unknown'}" + (f": {body.why}" if body.why else "")
        if body.state is RiskState.ACTIVE:
            await self.c.close_alert(
                "risk", "risk_state", f"trading resumed {by} after {{duration}}"
            )
        else:
            severity, what = RISK_MESSAGES[body.state]  # HALTED <-> REDUCING: a new text
            await self.c.open_alert("risk", "risk_state", severity, f"{what} {by}", replace=True,
                                    opened_at=msg.ts / 1e9, details={"who": body.who})  # fmt: skip
        if body.breach:
            await self.c.event("loss_limit", "loss_limit", CRIT,
                               f"daily loss limit breached: {body.why}")  # fmt: skip

    # --- orders:events ---------------------------------------------------------------

    async def on_order_event(self, msg: Message[Any]) -> None:
        body = msg.body
        if not self.settings.alert_fills or not isinstance(body, OrderEvent):
            return
        if body.kind not in (OrderEventKind.FILL, OrderEventKind.PARTIAL):
            return
        what = body.contract.key if body.contract else body.client_order_id
        side = body.action.value if body.action else ""
        price = f" @ {body.fill_price:.2f}" if body.fill_price is not None else ""
        await self.c.event(
            f"fill:{body.exec_id or body.client_order_id}:{body.filled_total}", "fill", INFO,
            f"{body.kind.value}: {side} {body.fill_qty} {what}{price}"
            + (" (simulated)" if body.simulated else ""),
        )  # fmt: skip

    # --- timers ----------------------------------------------------------------------

    async def tick(self, now: float) -> None:
        """Everything that opens with time: outages, silent services, dead letters."""
        down = self.c.state.get("gateway_down") or {}
        if down.get("scheduled"):
            await self._timer("gateway_down", "gateway", "gateway", now, LOGIN_MESSAGE,
                              threshold=self.settings.ib_login_grace_s)  # fmt: skip
        else:
            await self._timer("gateway_down", "gateway", "gateway", now,
                              "gateway {state} for {duration} ({reason})")  # fmt: skip
        await self._timer("ib_lost", "ib:1100", "ib_1100", now,
                          "IB lost connectivity to its servers {duration} ago (1100)")  # fmt: skip
        await self._heartbeats()
        await self._dead_letters(now)

    async def _timer(
        self, name: str, key: str, code: str, now: float, template: str, threshold: float = 0.0
    ) -> None:
        info = self.c.state.get(name)
        if not info or key in self.c.open:
            return
        since = float(info["since"])
        if now - since <= (threshold or self.settings.alert_gateway_down_s):
            return
        message = (
            template.replace("{duration}", duration(now - since))
            .replace("{state}", str(info.get("state", "")))
            .replace("{reason}", str(info.get("reason", "") or "no reason given"))
        )
        await self.c.open_alert(key, code, CRIT, message, opened_at=since)

    async def _heartbeats(self) -> None:
        seen = set(self.c.state.get("seen", []))
        for name in expected_services(self.settings):
            if name == self.me:
                continue
            key = f"service:{name}"
            alive = bool(await self.redis.exists(service_key(name)))
            if alive and name not in seen:
                seen.add(name)
                await self.c.remember("seen", sorted(seen))
            if alive:
                await self.c.close_alert(key, "service", f"{name} is back after {{duration}}")
            elif name in seen:
                await self.c.open_alert(
                    key, "service", CRIT, f"{name} stopped: its heartbeat expired"
                )

    async def _dead_letters(self, now: float) -> None:
        window = self.settings.alert_dlq_window_s
        since_ms = int((now - window) * 1000)
        cap = self.settings.alert_dlq_threshold
        rows: Any = await self.redis.xrevrange(SYS_DLQ, "+", f"{since_ms}-0", count=max(cap, 1))
        count = len(rows)
        if count >= cap:
            reason = rows[0][1].get(b"reason", b"").decode(errors="replace")[:300]
            stream = rows[0][1].get(b"stream", b"").decode(errors="replace")
            await self.c.open_alert(
                "dlq", "dlq", WARN,
                f"{count}+ dead letters in the last {duration(window)} (optbot tail sys:dlq)",
                details={"latest_reason": reason, "latest_stream": stream},
            )  # fmt: skip
        elif count == 0:
            await self.c.close_alert(
                "dlq", "dlq", "no new dead letters; the burst lasted {duration}"
            )
