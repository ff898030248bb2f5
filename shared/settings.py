"""One validated settings model for every service.

Values come from ``OPTBOT_*`` environment variables and an optional ``.env`` file.
A wrong value must stop start-up with a message that names the variable, so
``load_settings`` turns pydantic's errors into one readable ``ConfigError``.
"""

from __future__ import annotations

import difflib
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlparse

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "OPTBOT_"


class ConfigError(Exception):
    """Configuration is invalid; the message names every offending variable."""


class Mode(StrEnum):
    """Where market data and (optionally) orders come from."""

    SIMULATED = "simulated"
    IB_PAPER = "ib_paper"


class MarketDataType(StrEnum):
    """IB market-data types (reqMarketDataType 1-4)."""

    LIVE = "live"
    FROZEN = "frozen"
    DELAYED = "delayed"
    DELAYED_FROZEN = "delayed_frozen"


class ClientIdPolicy(StrEnum):
    """What the adapter does when IB answers 326 (client id in use)."""

    WAIT = "wait"
    NEXT = "next"


class LogFormat(StrEnum):
    JSON = "json"
    CONSOLE = "console"


PositiveInt = Annotated[int, Field(gt=0)]
NonNegInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
Port = Annotated[int, Field(ge=0, le=65535)]

_REDIS_SCHEMES = ("redis", "rediss", "unix")


class Settings(BaseSettings):
    """Every tunable of optbot. Field descriptions feed the README table and errors."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="forbid",
        frozen=True,
        validate_default=True,
    )

    # --- system ---------------------------------------------------------------
    mode: Mode = Field(Mode.SIMULATED, description="simulated (TWS simulator) or ib_paper")
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", description="Redis URL (redis://, rediss:// or unix://)"
    )
    var_dir: Path = Field(Path("var"), description="where `optbot up` keeps Redis AOF and logs")
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")
    log_format: LogFormat = Field(
        LogFormat.JSON, description="json (one object per line) or console"
    )
    instance: str = Field("", description="instance name of this process (default: host-pid)")

    # --- heartbeats -----------------------------------------------------------
    heartbeat_interval_s: PositiveFloat = Field(2.0, description="seconds between heartbeats")
    heartbeat_ttl_s: PositiveFloat = Field(10.0, description="svc:{name} expires after this")

    # --- bus ------------------------------------------------------------------
    publish_batch: PositiveInt = Field(500, description="entries per pipeline round trip")
    publish_linger_ms: NonNegInt = Field(2, description="max wait to fill a publish batch")
    consume_batch: PositiveInt = Field(500, description="entries per XREADGROUP")
    consume_block_ms: PositiveInt = Field(1000, description="XREADGROUP block time")
    claim_idle_ms: PositiveInt = Field(30_000, description="reclaim entries idle this long")
    max_deliveries: PositiveInt = Field(5, description="deliveries before an entry goes to DLQ")
    maxlen_ticks: PositiveInt = Field(100_000, description="cap of md:ticks (MAXLEN ~)")
    maxlen_signals: PositiveInt = Field(50_000, description="cap of md:signals")
    maxlen_commands: PositiveInt = Field(10_000, description="cap of gw:commands")
    maxlen_status: PositiveInt = Field(10_000, description="cap of gw:status")
    maxlen_orders: PositiveInt = Field(1_000_000, description="cap of orders:* streams")
    maxlen_account: PositiveInt = Field(10_000, description="cap of account")
    maxlen_dlq: PositiveInt = Field(100_000, description="cap of sys:dlq")
    maxlen_control: PositiveInt = Field(100_000, description="cap of sys:control")

    # --- IB connection --------------------------------------------------------
    ib_host: str = Field("127.0.0.1", description="IB Gateway / simulator host")
    ib_port: Port = Field(4102, description="IB Gateway port (simulator default 4102)")
    ib_client_id: NonNegInt = Field(1, description="the one IB client id (no random ids)")
    ib_client_id_max: NonNegInt = Field(0, description="last id tried with policy next (0: none)")
    ib_client_id_policy: ClientIdPolicy = Field(
        ClientIdPolicy.WAIT, description="on error 326: wait (retry) or next (try next id)"
    )
    ib_market_data_type: MarketDataType = Field(
        MarketDataType.LIVE, description="live, frozen, delayed or delayed_frozen"
    )
    ib_route_orders: bool = Field(False, description="route orders to IB (paper accounts only)")
    ib_password: SecretStr = Field(SecretStr(""), description="IB password (never logged)")

    # --- TWS simulator --------------------------------------------------------
    sim_host: str = Field("127.0.0.1", description="simulator bind address")
    sim_port: Port = Field(4102, description="simulator API port")
    sim_control_port: Port = Field(4103, description="simulator fault-control port")
    sim_seed: NonNegInt = Field(7, description="seed of the simulated market")

    # --- monitor --------------------------------------------------------------
    monitor_host: str = Field("127.0.0.1", description="dashboard bind address")
    monitor_port: Port = Field(5001, description="dashboard port")
    control_token: SecretStr = Field(
        SecretStr(""), description="Bearer token for control endpoints (empty: disabled)"
    )

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in _REDIS_SCHEMES:
            raise ValueError("expected a URL like redis://host:6379/0 (or rediss://, unix://)")
        if parsed.scheme != "unix" and not parsed.hostname:
            raise ValueError("expected a URL with a host, like redis://127.0.0.1:6379/0")
        return value

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("expected one of DEBUG, INFO, WARNING, ERROR")
        return upper

    def maxlen(self, stream: str) -> int:
        """Cap for ``stream`` (MAXLEN ~): market data short, orders and fills long."""
        prefix = stream.split(":", 1)[0]
        table = {
            "md:ticks": self.maxlen_ticks,
            "md:signals": self.maxlen_signals,
            "gw:commands": self.maxlen_commands,
            "gw:status": self.maxlen_status,
            "account": self.maxlen_account,
            "sys:dlq": self.maxlen_dlq,
            "sys:control": self.maxlen_control,
        }
        if stream in table:
            return table[stream]
        if stream.startswith("md:ticks:"):
            return self.maxlen_ticks
        if prefix == "orders":
            return self.maxlen_orders
        return self.maxlen_signals


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def _describe(error: dict[str, Any]) -> str:
    loc = error.get("loc") or ("?",)
    field = str(loc[0])
    name = env_name(field)
    given = error.get("input")
    msg = str(error.get("msg", "invalid value"))
    msg = msg.removeprefix("Value error, ")
    field_info = Settings.model_fields.get(field)
    hint = f" ({field_info.description})" if field_info and field_info.description else ""
    if error.get("type") == "extra_forbidden":
        return f"{name}: unknown setting{_suggest(field)}"
    return f"{name}={given!r}: {msg}{hint}"


def _suggest(field: str) -> str:
    close = difflib.get_close_matches(field, list(Settings.model_fields), n=1)
    return f"; did you mean {env_name(close[0])}?" if close else ""


def unknown_env_vars(environ: dict[str, str] | None = None) -> list[str]:
    """``OPTBOT_*`` variables that name no setting: a typo must not pass silently."""
    env = os.environ if environ is None else environ
    known = {env_name(f) for f in Settings.model_fields}
    return sorted(k for k in env if k.startswith(ENV_PREFIX) and k not in known)


def load_settings(**overrides: Any) -> Settings:
    """Build and validate settings, or raise ``ConfigError`` naming each bad variable."""
    problems = [
        f"{name}: unknown setting{_suggest(name.removeprefix(ENV_PREFIX).lower())}"
        for name in unknown_env_vars()
    ]
    settings: Settings | None = None
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        problems.extend(_describe(dict(e)) for e in exc.errors())
    if problems or settings is None:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return settings
