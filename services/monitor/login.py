"""``/login``: type the read token once; the browser then holds a session cookie.

EventSource cannot send an ``Authorization`` header, so the page relies on the
cookie for its API calls and live updates. No JavaScript: a plain form (the page's
CSP forbids inline scripts anyway). Only used when ``OPTBOT_MONITOR_READ_TOKEN`` is set.
"""

from __future__ import annotations

import html
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.monitor.access import ReadAccess
from services.monitor.controls import FailureLimiter
from shared.logs import get_logger

log = get_logger("optbot.monitor.login")

_FORM = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>optbot — log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/app.css"></head>
<body><main style="max-width:28rem;margin:4rem auto">
<h1>optbot dashboard</h1>
<p>This dashboard needs its read token (<code>OPTBOT_MONITOR_READ_TOKEN</code>).</p>
<form method="post" action="/login">
<label>Token <input name="token" type="password" autocomplete="current-password" autofocus
 required></label> <button type="submit">Log in</button></form>
<p class="warn">{message}</p></main></body></html>
"""


def _form(message: str = "", status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = _FORM.format(message=html.escape(message))
    return HTMLResponse(body, status, headers={"Cache-Control": "no-store", **(headers or {})})


def build_login_router(access: ReadAccess, limiter: FailureLimiter) -> APIRouter:
    """``GET /login`` (the form) and ``POST /login`` (check, set the cookie, go to ``/``)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/login")
    async def login_form() -> Response:
        if not access.enabled:
            return RedirectResponse("/", 303)
        return _form()

    @router.post("/login")
    async def login(request: Request) -> Response:
        if not access.enabled:
            return RedirectResponse("/", 303)
        client = request.client.host if request.client else "unknown"
        fields = parse_qs((await request.body()).decode("utf-8", "replace"))
        given = (fields.get("token") or [""])[0]
        if access.token_ok(given):  # the right token first: never locked out
            log.info("read_login", client=client)
            response = RedirectResponse("/", 303)
            secure = request.url.scheme == "https"
            response.headers["set-cookie"] = access.session_cookie(secure)
            return response
        wait = limiter.retry_after(client)
        if wait > 0:
            log.warning("read_throttled", client=client, path="/login", retry_after_s=wait)
            retry = str(max(1, round(wait)))
            return _form("Too many failed attempts; try again later.", 429, {"Retry-After": retry})
        limiter.failed(client)
        reason = "wrong token" if given else "missing token"
        log.warning("read_refused", client=client, path="/login", reason=reason)
        return _form("Wrong token.", 401)

    return router
