"""Connection state on ``gw:status`` and in the heartbeat, in one place.

Every transition (standby, connecting, connected, degraded, disconnected) is a
``GatewayStatus`` entry with the reason, client id, server version, data type and
account; IB errors and our own refusals are ``IbError`` entries. Calls are
synchronous (they queue on the publisher) so ib_async callbacks can report too.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.contract import GW_STATUS
from shared.logs import get_logger
from shared.runner import ServiceContext
from shared.schemas import ConnState, DataType, GatewayStatus, IbError

log = get_logger("optbot.gateway_adapter.status")


@dataclass
class ConnInfo:
    """What we know about the current connection (shown with every transition)."""

    client_id: int = 0
    server_version: int = 0
    data_type: DataType = DataType.LIVE
    account: str = ""


class StatusReporter:
    """Publishes transitions and errors; mirrors the state into the heartbeat."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self.info = ConnInfo()
        self.state = ConnState.STANDBY
        self.reason = ""
        self.history: list[ConnState] = []

    def transition(self, state: ConnState, reason: str = "") -> None:
        self.state, self.reason = state, reason
        self.history.append(state)
        info = self.info
        body = GatewayStatus(
            state=state,
            reason=reason[:4096],
            client_id=info.client_id,
            server_version=info.server_version,
            data_type=info.data_type,
            account=info.account,
            instance=self._ctx.instance,
        )
        self._ctx.publisher.add(GW_STATUS, body, key=state.value)
        self._ctx.state = state.value
        self._ctx.extra.update(
            {
                "ib_state": state.value,
                "ib_reason": reason[:200],
                "client_id": str(info.client_id),
                "server_version": str(info.server_version),
                "data_type": info.data_type.value,
                "account": info.account,
            }
        )
        log.info("gateway_state", state=state.value, reason=reason, client_id=info.client_id)

    def error(
        self,
        code: int,
        message: str,
        *,
        req_id: int = -1,
        symbol: str = "",
        severity: str = "error",
    ) -> None:
        body = IbError(
            code=code, message=message[:4096], req_id=req_id, symbol=symbol[:64], severity=severity
        )
        self._ctx.publisher.add(GW_STATUS, body, key=symbol or str(code))
        log.warning("ib_error", code=code, message=message, symbol=symbol, severity=severity)
