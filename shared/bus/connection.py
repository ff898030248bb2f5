"""Redis client construction in one place (timeouts, health checks, retries, packing, Sentinel)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelManagedConnection
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


class HiredisPackingConnection(aioredis.Connection):
    """Packs commands with hiredis' C packer.

    redis-py's asyncio connection packs every argument in Python; at tens of
    thousands of XADD/HSET per second that packing is the largest cost of the
    hot path (the sync client already uses hiredis for it).
    """

    def pack_command(self, *args: Any) -> list[bytes]:
        first = args[0]
        if isinstance(first, bytes):
            first = first.decode()
        if isinstance(first, str) and " " in first:  # "XGROUP CREATE" is two arguments
            args = (*first.split(), *args[1:])
        return [hiredis.pack_command(args)]


class HiredisSentinelConnection(SentinelManagedConnection):
    """A Sentinel-managed connection (asks the sentinels for the master) packing with hiredis."""

    pack_command = HiredisPackingConnection.pack_command


@dataclass(frozen=True)
class SentinelConfig:
    """Where the sentinels are, the master name they watch, and how to log in to them.

    The sentinels' credentials are their own (``requirepass`` or a sentinel ACL
    user); the data nodes keep each service's ACL user.
    """

    addresses: tuple[tuple[str, int], ...]
    master: str
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:  # never the password, even in a traceback
        return f"SentinelConfig(addresses={self.addresses!r}, master={self.master!r})"


def _client_options(socket_timeout: float | None) -> dict[str, Any]:
    return {
        "decode_responses": False,
        "socket_connect_timeout": 2.0,
        "socket_timeout": socket_timeout,
        "health_check_interval": 15,
        "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
    }


def connect_redis(
    url: str,
    *,
    socket_timeout: float | None = 10.0,
    username: str | None = None,
    password: str | None = None,
    sentinel: SentinelConfig | None = None,
) -> aioredis.Redis:
    """A client that retries briefly on connection faults and never decodes bytes.

    ``socket_timeout`` must exceed the longest XREADGROUP block we issue. A
    ``username``/``password`` given here replace any in the URL (an ACL user).
    With ``sentinel`` the client asks the sentinels for the master on every new
    connection, so after a failover it reconnects to the promoted replica.
    """
    if sentinel is not None:
        return _connect_sentinel(url, sentinel, socket_timeout, username, password)
    extra: dict[str, Any] = {}
    if username is not None:
        url = _without_credentials(url)
        extra.update(username=username, password=password)
    if urlparse(url).scheme == "redis":
        extra["connection_class"] = HiredisPackingConnection
    return aioredis.Redis.from_url(url, **_client_options(socket_timeout), **extra)


def _connect_sentinel(
    url: str,
    sentinel: SentinelConfig,
    socket_timeout: float | None,
    username: str | None,
    password: str | None,
) -> aioredis.Redis:
    """A master client through Sentinel; the URL only lends its db and credentials."""
    parsed = urlparse(url)
    db = int(parsed.path.strip("/") or 0) if parsed.scheme != "unix" else 0
    if username is None and parsed.username:
        username, password = parsed.username, parsed.password
    sentinels = Sentinel(  # type: ignore[no-untyped-call]
        list(sentinel.addresses),
        sentinel_kwargs={
            "socket_connect_timeout": 1.0,
            "socket_timeout": 1.0,
            "username": sentinel.username,
            "password": sentinel.password,
        },
    )
    client: aioredis.Redis = sentinels.master_for(
        sentinel.master,
        connection_class=HiredisSentinelConnection,
        db=db,
        username=username,
        password=password,
        **_client_options(socket_timeout),
    )
    return client


def _without_credentials(url: str) -> str:
    """``url`` without ``user:password@`` (redis-py lets the URL's win over arguments)."""
    parsed = urlparse(url)
    if "@" not in parsed.netloc:
        return url
    return parsed._replace(netloc=parsed.netloc.rsplit("@", 1)[1]).geturl()
