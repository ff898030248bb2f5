"""What every ``optbot`` command shares: settings or exit 2, Redis as the operator.

Command groups live in their own modules (``optbot.sim`` …) and import these from
here, not from ``optbot.cli``, which imports them.
"""

from __future__ import annotations

import redis.asyncio as aioredis
import typer

from shared.redact import redact_text, redact_url
from shared.settings import ConfigError, Settings, load_settings


def load_or_exit() -> Settings:
    """The settings; an invalid one prints why and exits 2."""
    try:
        return load_settings()
    except ConfigError as exc:
        typer.echo(f"optbot: {exc}", err=True)
        raise typer.Exit(2) from exc


def connect_or_exit(settings: Settings, *, socket_timeout: float = 10.0) -> aioredis.Redis:
    """A client as the operator (or ``OPTBOT_REDIS_USERNAME``); a bad secret exits 2."""
    from shared.acl import OPERATOR
    from shared.redis_auth import connect_as

    try:
        return connect_as(settings, OPERATOR, socket_timeout=socket_timeout)
    except ConfigError as exc:
        typer.echo(f"optbot: {exc}", err=True)
        raise typer.Exit(2) from exc


def unreachable(settings: Settings, exc: BaseException) -> str:
    """The error line for a Redis that did not answer, with every password masked."""
    return f"optbot: Redis at {redact_url(settings.redis_url)} is unreachable: " + redact_text(
        str(exc)
    )
