"""System reads: services, gateway connection, risk state, streams, DLQ, IB errors."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Literal

import redis.asyncio as aioredis

from services.monitor import models as m
from services.monitor.convert import epoch_s, integer, loose_entry, str_map, text
from shared.bus.latest import latest_entry
from shared.contract import GW_STATUS, MD_TICKS, RISK_STATE, SYS_ALERTS, SYS_DLQ, service_key
from shared.envelope import DecodeError, decode
from shared.schemas import Alert, ConnState, DataType, GatewayStatus, IbError, RiskState
from shared.status_rows import service_rows, stream_rows

GATEWAY = "gateway_adapter"
_SCAN = 500  # gw:status entries searched for the latest status / errors


async def services(redis: aioredis.Redis, names: Sequence[str]) -> list[m.Service]:
    rows = await service_rows(redis, names)
    return [
        m.Service(
            name=r.name,
            alive=r.alive,
            pid=r.pid,
            uptime_s=round(r.uptime_s, 1),
            heartbeat_age_s=round(max(0.0, r.heartbeat_age_s), 2),
            lag=r.lag,
            state=r.state,
        )
        for r in rows
    ]


async def risk(redis: aioredis.Redis) -> m.Risk:
    fields = str_map(await redis.hgetall(RISK_STATE))
    raw = fields.get("state", "").upper()
    state: RiskState | Literal["UNKNOWN"]
    try:
        state = RiskState(raw)
    except ValueError:
        state = m.UNKNOWN
    why = fields.get("why", "") if fields else "no risk state recorded yet"
    return m.Risk(
        state=state, why=why, who=fields.get("who", ""), since=epoch_s(fields.get("since"))
    )


async def _gw_entries(redis: aioredis.Redis, count: int) -> list[tuple[str, Any]]:
    """Newest ``gw:status`` entries decoded (undecodable ones skipped), newest first."""
    rows: Any = await redis.xrevrange(GW_STATUS, count=count)
    out: list[tuple[str, Any]] = []
    for entry_id, fields in rows:
        try:
            out.append((text(entry_id), decode(fields, text(entry_id))))
        except DecodeError:
            continue
    return out


def _gateway_from_status(msg: Any) -> m.Gateway:
    body: GatewayStatus = msg.body
    return m.Gateway(
        state=body.state,
        reason=body.reason,
        client_id=body.client_id,
        server_version=body.server_version,
        data_type=body.data_type,
        account=body.account,
        instance=body.instance,
        since=msg.ts / 1e9,
    )


def _overlay_heartbeat(gw: m.Gateway, hb: dict[str, str]) -> m.Gateway:
    """The active adapter's heartbeat over a status entry that is not its own."""
    try:
        state = ConnState(hb.get("ib_state", ""))
    except ValueError:
        return gw
    try:
        data_type: DataType | None = DataType(hb.get("data_type", ""))
    except ValueError:
        data_type = gw.data_type
    return gw.model_copy(
        update={
            "state": state,
            "reason": hb.get("ib_reason", gw.reason),
            "client_id": integer(hb.get("client_id"), gw.client_id or 0),
            "server_version": integer(hb.get("server_version"), gw.server_version or 0),
            "data_type": data_type,
            "account": hb.get("account", gw.account),
            "instance": hb.get("instance", gw.instance),
        }
    )


async def gateway(redis: aioredis.Redis) -> m.Gateway:
    """Last reported connection state; DISCONNECTED when the adapter itself is gone.

    The active adapter's own newest status entry is the state (its heartbeat mirrors
    a transition only at its next beat); without one, the heartbeat is overlaid on
    whatever status is newest."""
    hb = str_map(await redis.hgetall(service_key(GATEWAY)))
    active = hb.get("instance", "")
    if active:
        own = await latest_entry(
            redis,
            GW_STATUS,
            GatewayStatus.TYPE,
            lambda msg: msg.body.instance == active,
            limit=_SCAN,
        )
        if own is not None:
            return _gateway_from_status(own)
    latest = next(
        (msg for _, msg in await _gw_entries(redis, _SCAN) if isinstance(msg.body, GatewayStatus)),
        None,
    )
    gw = _gateway_from_status(latest) if latest is not None else m.Gateway()
    if hb:
        return _overlay_heartbeat(gw, hb)
    if gw.state is not None and gw.state is not ConnState.DISCONNECTED:
        last = gw.state.value
        return gw.model_copy(
            update={
                "state": ConnState.DISCONNECTED,
                "reason": f"gateway_adapter heartbeat missing (last reported: {last})",
            }
        )
    return gw


async def ib_errors(redis: aioredis.Redis, limit: int) -> list[m.IbError]:
    out: list[m.IbError] = []
    if limit <= 0:
        return out
    for entry_id, msg in await _gw_entries(redis, _SCAN):
        if isinstance(msg.body, IbError):
            b: IbError = msg.body
            out.append(
                m.IbError(
                    id=entry_id,
                    ts=msg.ts / 1e9,
                    code=b.code,
                    message=b.message,
                    symbol=b.symbol,
                    severity=b.severity,
                )
            )
            if len(out) >= limit:
                break
    return out


def _group(raw: dict[str, Any]) -> m.Group:
    lag = raw.get("lag")
    return m.Group(
        name=str(raw.get("name", "")),
        consumers=integer(raw.get("consumers")),
        pending=integer(raw.get("pending")),
        lag=integer(lag) if lag not in (None, "", "None") else None,
        last_delivered=str(raw.get("last-delivered-id", "")),
    )


async def streams(redis: aioredis.Redis) -> list[m.StreamInfo]:
    rows = await stream_rows(redis)
    return [
        m.StreamInfo(
            name=r.name, length=r.length, pending=r.pending, groups=[_group(g) for g in r.groups]
        )
        for r in rows
    ]


async def dead_letters(redis: aioredis.Redis, limit: int) -> m.DeadLetters:
    count = int(await redis.xlen(SYS_DLQ))
    rows: Any = await redis.xrevrange(SYS_DLQ, count=limit) if limit else []
    return m.DeadLetters(count=count, latest=[loose_entry(i, f) for i, f in rows])


async def redis_info(redis: aioredis.Redis) -> dict[str, str]:
    info = await redis.info()
    keep = ("redis_version", "uptime_in_seconds", "used_memory_human", "connected_clients")
    return {k: text(info.get(k, "")) for k in keep}


async def alerts(redis: aioredis.Redis, limit: int) -> list[m.Alert]:
    """Operator alerts on ``sys:alerts`` (e.g. ledger and broker disagree), newest first."""
    rows: Any = await redis.xrevrange(SYS_ALERTS, count=limit) if limit else []
    out: list[m.Alert] = []
    for entry_id, fields in rows:
        try:
            msg = decode(fields, text(entry_id))
        except DecodeError:
            continue
        if isinstance(msg.body, Alert):
            b: Alert = msg.body
            out.append(
                m.Alert(
                    id=msg.id,
                    ts=msg.ts / 1e9,
                    code=b.code,
                    severity=b.severity.value,
                    message=b.message,
                    source=b.source,
                )
            )
    return out


async def system(redis: aioredis.Redis, limit: int) -> m.System:
    return m.System(
        now=time.time(),
        redis=await redis_info(redis),
        streams=await streams(redis),
        dlq=await dead_letters(redis, limit),
        ib_errors=await ib_errors(redis, limit),
        alerts=await alerts(redis, limit),
    )


async def newest_tick_age(redis: aioredis.Redis) -> float | None:
    """Seconds since the newest ``md:ticks`` entry (by its id), None when empty."""
    rows: Any = await redis.xrevrange(MD_TICKS, count=1)
    if not rows:
        return None
    ms = int(text(rows[0][0]).split("-", 1)[0])
    return max(0.0, time.time() - ms / 1000.0)
