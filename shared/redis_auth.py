"""Which Redis user a process is, and its password, read from a file.

Passwords live in files (a Docker secret, or the ones ``optbot up`` generates under
``var/``), never in the environment, a URL or a log. A process's user is
``OPTBOT_REDIS_USERNAME`` or else its role: the service's name for ``optbot run``,
``operator`` for the CLI's own commands.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis

from shared.bus import connect_redis
from shared.bus.connection import SentinelConfig
from shared.settings import ConfigError, Settings, env_name


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def __repr__(self) -> str:  # never the password, even in a traceback
        return f"Credentials(username={self.username!r}, password='***')"


def read_password(path: Path, what: str) -> str:
    """The password in ``path`` (surrounding whitespace dropped); a clear error otherwise."""
    try:
        password = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read Redis password file {path}: {exc}") from exc
    if not password:
        raise ConfigError(f"{what}: Redis password file {path} is empty")
    return password


def credentials(settings: Settings, role: str) -> Credentials | None:
    """This process's Redis user and password; None when no password source is set."""
    name = settings.redis_username or role
    if settings.redis_password_file is not None:
        path = settings.redis_password_file
        return Credentials(name, read_password(path, env_name("redis_password_file")))
    if settings.redis_secrets_dir is not None:
        path = settings.redis_secrets_dir / name
        return Credentials(name, read_password(path, env_name("redis_secrets_dir")))
    return None


def sentinel_config(settings: Settings) -> SentinelConfig | None:
    """Where the sentinels are and how to log in to them; None when Sentinel is off."""
    addresses = settings.sentinel_addresses()
    if not addresses:
        return None
    password = None
    if settings.redis_sentinel_password_file is not None:
        what = env_name("redis_sentinel_password_file")
        password = read_password(settings.redis_sentinel_password_file, what)
    return SentinelConfig(
        addresses=tuple(addresses),
        master=settings.redis_sentinel_master,
        username=settings.redis_sentinel_username or None,
        password=password,
    )


def connect_as(
    settings: Settings, role: str, *, socket_timeout: float | None = 10.0
) -> aioredis.Redis:
    """A client of ``settings.redis_url`` (or of the sentinels' master) as this user."""
    creds = credentials(settings, role)
    return connect_redis(
        settings.redis_url,
        socket_timeout=socket_timeout,
        username=creds.username if creds else None,
        password=creds.password if creds else None,
        sentinel=sentinel_config(settings),
    )


def ensure_passwords(secrets_dir: Path, names: Iterable[str]) -> dict[str, str]:
    """Every user's password, generating the missing ones (files 0600, directory 0700)."""
    secrets_dir.mkdir(parents=True, exist_ok=True)
    secrets_dir.chmod(0o700)
    out: dict[str, str] = {}
    for name in names:
        path = secrets_dir / name
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32) + "\n")
        out[name] = read_password(path, str(secrets_dir))
    return out


def load_passwords(secrets_dir: Path, names: Iterable[str]) -> dict[str, str]:
    """Every user's password from ``secrets_dir``; a clear error names a missing one."""
    return {name: read_password(secrets_dir / name, str(secrets_dir)) for name in names}
