"""Refuse request bodies above a limit before they are read into memory (413).

The API's only bodies are small control requests; without a cap a client could make
the monitor buffer an arbitrarily large upload, authenticated or not.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.logs import get_logger

log = get_logger("optbot.monitor.body_limit")


class BodyLimit:
    """ASGI middleware: declared or streamed bodies over ``limit`` bytes get 413."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, send)
            return
        seen = 0
        too_large = False

        async def counting_receive() -> Message:
            # Past the limit the app gets an empty last chunk (it stops reading) and its
            # answer is replaced by 413: the framework's own body errors cannot hide it.
            nonlocal seen, too_large
            if too_large:
                return {"type": "http.request", "body": b"", "more_body": False}
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                too_large = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return message

        refused = False

        async def guarded_send(message: Message) -> None:
            nonlocal refused
            if not too_large:
                await send(message)
            elif not refused:
                refused = True
                await self._refuse(scope, send)

        await self.app(scope, counting_receive, guarded_send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        client: Any = scope.get("client") or ("unknown", 0)
        log.warning("request_too_large", path=scope.get("path"), client=client[0], limit=self.limit)
        body = json.dumps({"detail": f"request body over {self.limit} bytes"}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
