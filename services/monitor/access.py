"""Who may read: the optional read token for the API, live updates and ``/metrics``.

With ``OPTBOT_MONITOR_READ_TOKEN`` empty, reads are open: the dashboard listens on
loopback by default. Once set (a dashboard reachable from elsewhere), a request needs
the read token, or the control token, as ``Authorization: Bearer …``, or the session
cookie that ``/login`` sets after the token was typed once. The cookie holds an HMAC of
the token, never the token itself. Wrong tokens count towards the same per-client
lockout as the controls; the right token is accepted even from a locked-out address.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from http.cookies import CookieError, SimpleCookie
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from services.monitor.controls import FailureLimiter
from shared.logs import get_logger

log = get_logger("optbot.monitor.access")

SESSION_COOKIE = "optbot_session"
PROTECTED = ("/api/", "/metrics")
OWN_CHECK = ("/api/control/",)  # controls check the control token themselves
REQUIRED = "read token required: log in at /login, or send Authorization: Bearer TOKEN"


class ReadAccess:
    """The read and control tokens, and how a request proves it knows one."""

    def __init__(self, read_token: str, control_token: str) -> None:
        self.enabled = bool(read_token)
        self._tokens = [t.encode() for t in (read_token, control_token) if t]
        self._session = hmac.new(
            read_token.encode(), b"optbot-monitor-session-v1", hashlib.sha256
        ).hexdigest()

    def token_ok(self, given: str) -> bool:
        """Constant-time comparison with each configured token (no early exit)."""
        raw = given.strip().encode()
        return bool(raw) and sum(hmac.compare_digest(raw, t) for t in self._tokens) > 0

    def session_cookie(self, secure: bool) -> str:
        """``Set-Cookie`` value: HttpOnly, SameSite=Strict, Secure behind TLS."""
        flags = "; Secure" if secure else ""
        return f"{SESSION_COOKIE}={self._session}; Path=/; HttpOnly; SameSite=Strict{flags}"

    def bearer(self, headers: dict[bytes, bytes]) -> str | None:
        """The Bearer token of a request ("" when another scheme; None when absent)."""
        raw = headers.get(b"authorization")
        if raw is None:
            return None
        scheme, _, given = raw.decode("latin-1").partition(" ")
        return given if scheme.lower() == "bearer" else ""

    def has_session(self, headers: dict[bytes, bytes]) -> bool:
        cookie: SimpleCookie = SimpleCookie()
        try:
            cookie.load(headers.get(b"cookie", b"").decode("latin-1"))
        except CookieError:  # a malformed Cookie header is simply no session
            return False
        morsel = cookie.get(SESSION_COOKIE)
        return morsel is not None and hmac.compare_digest(morsel.value, self._session)

    def allowed(self, headers: dict[bytes, bytes]) -> bool:
        given = self.bearer(headers)
        return (given is not None and self.token_ok(given)) or self.has_session(headers)


def needs_read_token(path: str) -> bool:
    return path.startswith(PROTECTED) and not path.startswith(OWN_CHECK)


class ReadGuard:
    """ASGI middleware: 401 (or 429 while locked out) on protected paths without a token."""

    def __init__(self, app: ASGIApp, access: ReadAccess, limiter: FailureLimiter) -> None:
        self.app = app
        self.access = access
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not self.access.enabled
            or not needs_read_token(scope.get("path", ""))
        ):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if self.access.allowed(headers):  # the right token first: never locked out
            await self.app(scope, receive, send)
            return
        client: Any = (scope.get("client") or ("unknown", 0))[0]
        given = self.access.bearer(headers)
        wait = self.limiter.retry_after(client)
        if wait > 0:
            log.warning("read_throttled", client=client, path=scope["path"], retry_after_s=wait)
            await _answer(send, 429, "too many failed attempts; try again later", wait)
            return
        if given:  # a wrong guess, not a browser whose session ended
            self.limiter.failed(client)
        log.warning(
            "read_refused",
            client=client,
            path=scope["path"],
            reason="wrong token" if given else "missing token",
        )
        await _answer(send, 401, REQUIRED)


async def _answer(send: Send, status: int, detail: str, retry_after: float = 0) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"www-authenticate", b"Bearer"),
    ]
    if retry_after:
        headers.append((b"retry-after", str(max(1, round(retry_after))).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
