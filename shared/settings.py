"""One validated settings model for every service, composed of one model per domain.

Values come from ``OPTBOT_*`` environment variables and an optional ``.env`` file.
A wrong value must stop start-up with a message that names the variable, so
``load_settings`` turns pydantic's errors into one readable ``ConfigError``.

Each domain (bus, ib, risk, ...) is a frozen pydantic model that declares its fields,
defaults, descriptions and checks once; ``Settings`` inherits all of them, so a field
keeps its flat name (``settings.risk_max_positions``, ``OPTBOT_RISK_MAX_POSITIONS``,
``Settings(risk_max_positions=2)``) and every field belongs to exactly one domain.
A domain model is usable on its own: ``RiskSettings()`` holds the defaults without
reading the environment, ``settings.risk`` is the loaded values of that domain, and
because ``Settings`` is a ``RiskSettings`` too, code that needs only one domain types
its parameter as that domain (``RiskLimits.from_settings(s: RiskSettings)``).
Which service may read which domain is declared in ``shared/settings_reads.py``.
"""

from __future__ import annotations

import datetime as dt
import difflib
import ipaddress
import os
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlparse

from dotenv import dotenv_values
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.redact import redact_text, redact_url
from shared.schemas import DataType, Regime

ENV_PREFIX = "OPTBOT_"


class ConfigError(Exception):
    """Configuration is invalid; the message names every offending variable."""


class Mode(StrEnum):
    """Where market data and (optionally) orders come from."""

    SIMULATED = "simulated"
    IB_PAPER = "ib_paper"


class ClientIdPolicy(StrEnum):
    """What the adapter does when IB answers 326 (client id in use)."""

    WAIT = "wait"
    NEXT = "next"


class MarketHours(StrEnum):
    """When the momentum screen runs: the simulator trades around the clock."""

    ALWAYS = "always"
    REGULAR = "regular"
    EXTENDED = "extended"


class LogFormat(StrEnum):
    JSON = "json"
    CONSOLE = "console"


PositiveInt = Annotated[int, Field(gt=0)]
NonNegInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
Port = Annotated[int, Field(ge=0, le=65535)]

_REDIS_SCHEMES = ("redis", "rediss", "unix")
MIN_TOKEN_CHARS = 24  # ~144 bits of token_urlsafe: guessing is hopeless, lockout or not
_SIM_PHASE = r"(trending_up|trending_down|choppy):[0-9]+(\.[0-9]+)?"
_SIM_SCHEDULE = rf"^(demo|off|{_SIM_PHASE}(,{_SIM_PHASE})*)$"
IB_BAR_SECONDS = frozenset({5, 10, 15, 30, 60, 120, 180, 300, 600, 900, 1200, 1800, 3600})


def _symbols(value: str) -> str:
    symbols = [s.strip().upper() for s in value.split(",") if s.strip()]
    bad = [s for s in symbols if not s.replace(".", "").isalnum() or len(s) > 12]
    if not symbols or bad:
        raise ValueError("expected comma-separated ticker symbols like SPY,QQQ,AAPL")
    return ",".join(dict.fromkeys(symbols))


def _token(value: SecretStr) -> SecretStr:
    given = value.get_secret_value()
    if given and len(given) < MIN_TOKEN_CHARS:
        raise ValueError(
            f"must be at least {MIN_TOKEN_CHARS} characters (it has {len(given)}); make one "
            "with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    if given != given.strip():
        raise ValueError("must not start or end with whitespace")
    return value


def _hh_mm(value: str) -> str:
    hh, sep, mm = value.partition(":")
    if not (sep and hh.isdigit() and mm.isdigit() and int(hh) < 24 and int(mm) < 60):
        raise ValueError("expected HH:MM (24 h, America/New_York), like 16:15")
    return f"{int(hh):02d}:{int(mm):02d}"


class Domain(BaseModel):
    """A group of settings one part of optbot owns; frozen and checked like ``Settings``."""

    model_config = ConfigDict(frozen=True, validate_default=True, extra="forbid")


class ProcessSettings(Domain):
    """What every process needs: mode, where it keeps files, logging, heartbeats."""

    mode: Mode = Field(Mode.SIMULATED, description="simulated (TWS simulator) or ib_paper")
    var_dir: Path = Field(Path("var"), description="where `optbot up` keeps Redis AOF and logs")
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")
    log_format: LogFormat = Field(
        LogFormat.JSON, description="json (one object per line) or console"
    )
    instance: str = Field("", description="instance name of this process (default: host-pid)")
    heartbeat_interval_s: PositiveFloat = Field(2.0, description="seconds between heartbeats")
    heartbeat_ttl_s: PositiveFloat = Field(10.0, description="svc:{name} expires after this")
    clock: Literal["host", "sim"] = Field(
        "host",
        description="trading time: host (live) or sim (follow sys:clock; set by optbot backtest)",
    )

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("expected one of DEBUG, INFO, WARNING, ERROR")
        return upper


class RedisSettings(Domain):
    """How every process reaches Redis: URL, ACL user, secrets, Sentinel."""

    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", description="Redis URL (redis://, rediss:// or unix://)"
    )
    # Redis ACL users (shared/acl.py): each process authenticates as its own user.
    redis_username: str = Field(
        "", description="Redis ACL user (default: the service's name; `operator` for the CLI)"
    )
    redis_password_file: Path | None = Field(
        None, description="file holding this process's Redis password (e.g. a Docker secret)"
    )
    redis_secrets_dir: Path | None = Field(
        None, description="directory of Redis password files, one per user, named after it"
    )
    # Redis Sentinel (README "Redis failover"): set the sentinels and every process
    # connects to the master they name; order-path writes then wait for a replica.
    redis_sentinels: str = Field(
        "", description="Sentinel addresses host:port,host:port (empty: connect to redis_url)"
    )
    redis_sentinel_master: str = Field(
        "optbot",
        pattern=r"^[A-Za-z0-9._-]+$",
        description="the master name the sentinels monitor (sentinel monitor NAME)",
    )
    redis_sentinel_username: str = Field(
        "", description="user to authenticate to the sentinels as (empty: none, or 'default')"
    )
    redis_sentinel_password_file: Path | None = Field(
        None, description="file holding the sentinels' password (their requirepass or user)"
    )
    redis_replica_wait_ms: PositiveInt = Field(
        500, description="Sentinel mode: order-path writes WAIT this long for one replica"
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

    @field_validator("redis_sentinels")
    @classmethod
    def _check_sentinels(cls, value: str) -> str:
        items = [v.strip() for v in value.split(",") if v.strip()]
        for item in items:
            host, _, port = item.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(
                    f"{item!r} is not host:port; expected e.g. "
                    "sentinel-1:26379,sentinel-2:26379,sentinel-3:26379"
                )
        return ",".join(items)

    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """``redis_sentinels`` as (host, port) pairs; empty when Sentinel is off."""
        pairs = (item.rpartition(":") for item in self.redis_sentinels.split(",") if item)
        return [(host, int(port)) for host, _, port in pairs]


class BusSettings(Domain):
    """Redis Streams: batching, consumer groups, dead letters, stream caps."""

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
    maxlen_replies: PositiveInt = Field(
        1_000,
        description="cap of each gw:replies:{service} (option chains are large; read at once)",
    )
    maxlen_orders: PositiveInt = Field(1_000_000, description="cap of orders:* streams")
    maxlen_account: PositiveInt = Field(10_000, description="cap of account")
    maxlen_dlq: PositiveInt = Field(100_000, description="cap of sys:dlq")
    maxlen_control: PositiveInt = Field(100_000, description="cap of sys:control")

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
        if stream.startswith("gw:replies:"):
            return self.maxlen_replies
        if prefix == "orders":
            return self.maxlen_orders
        return self.maxlen_signals


class IbSettings(Domain):
    """The adapter's IB API connection: address, client id, timeouts, pacing."""

    ib_host: str = Field("127.0.0.1", description="IB Gateway / simulator host")
    ib_port: Port = Field(4102, description="IB Gateway port (simulator default 4102)")
    ib_client_id: NonNegInt = Field(1, description="the one IB client id (no random ids)")
    ib_client_id_max: NonNegInt = Field(0, description="last id tried with policy next (0: none)")
    ib_client_id_policy: ClientIdPolicy = Field(
        ClientIdPolicy.WAIT, description="on error 326: wait (retry) or next (try next id)"
    )
    ib_market_data_type: DataType = Field(
        DataType.LIVE, description="live, frozen, delayed or delayed_frozen"
    )
    ib_route_orders: bool = Field(False, description="route orders to IB (paper accounts only)")
    ib_connect_timeout_s: PositiveFloat = Field(
        4.0, description="seconds to wait for the API handshake"
    )
    ib_request_timeout_s: PositiveFloat = Field(
        10.0, description="seconds to wait for an IB reply (qualify, chain, history)"
    )
    ib_reconnect_min_s: PositiveFloat = Field(
        0.25, description="first reconnect delay (doubles, jittered)"
    )
    ib_reconnect_max_s: PositiveFloat = Field(15.0, description="longest reconnect delay")
    ib_max_lines: PositiveInt = Field(100, description="market-data lines the adapter may hold")
    ib_pacing_per_s: PositiveFloat = Field(35.0, description="requests/s sent to IB (IB allows 50)")
    ib_decode_slice: NonNegInt = Field(
        100, description="IB messages decoded per event-loop turn (0: ib_async's own framing)"
    )


class IbRestartSettings(Domain):
    """IB Gateway's scheduled restarts (shared/ib_schedule.py): the adapter and notifier."""

    ib_restart_time: str = Field(
        "23:45",
        description="IB Gateway's daily restart (IBC AutoRestartTime), HH:MM America/New_York; "
        "empty: none",
    )
    ib_restart_window_s: PositiveFloat = Field(
        600.0, description="a disconnect this soon after the restart time is the scheduled one"
    )
    ib_login_grace_s: PositiveFloat = Field(
        300.0, description="after a scheduled restart, alert (approve the login) past this"
    )

    @field_validator("ib_restart_time")
    @classmethod
    def _check_restart_time(cls, value: str) -> str:
        return _hh_mm(value) if value else value


class GatewaySettings(Domain):
    """The gateway adapter's own behaviour: line cache, lease, chains, simulated fills."""

    gw_last_ttl_s: PositiveInt = Field(
        3600, description="md:last of a closed line expires after this (reopening keeps it)"
    )
    gw_lease_ttl_ms: PositiveInt = Field(
        3000, description="IB connection lease TTL; a standby takes over after it lapses"
    )
    gw_index_symbols: str = Field(
        "VIX,SPY,QQQ", description="comma-separated symbols whose lines outrank ordinary requests"
    )
    gw_chain_max_contracts: PositiveInt = Field(
        40, description="most options an option-chain request qualifies (nearest strikes first)"
    )
    gw_commission_per_contract: NonNegFloat = Field(
        0.65, description="simulated option commission per contract (USD)"
    )
    gw_commission_min: NonNegFloat = Field(
        1.0, description="simulated minimum commission per order"
    )
    gw_market_slippage_ticks: NonNegInt = Field(
        1,
        description="simulated market orders fill this many ticks (0.01) beyond the touch",
    )

    @field_validator("gw_index_symbols")
    @classmethod
    def _check_index_symbols(cls, value: str) -> str:
        return _symbols(value)

    @property
    def index_symbols(self) -> frozenset[str]:
        """``OPTBOT_GW_INDEX_SYMBOLS`` as a set of upper-case symbols."""
        return frozenset(s.strip().upper() for s in self.gw_index_symbols.split(",") if s.strip())


class SimSettings(Domain):
    """The TWS simulator: addresses, seed, speed, regimes, its paper account."""

    sim_host: str = Field("127.0.0.1", description="simulator bind address")
    sim_port: Port = Field(4102, description="simulator API port")
    sim_control_port: Port = Field(4103, description="simulator fault-control port")
    sim_control_host: str = Field(
        "127.0.0.1",
        description="fault-control bind address (unauthenticated: keep it on loopback)",
    )
    sim_seed: NonNegInt = Field(7, description="seed of the simulated market")
    sim_tick_interval_s: NonNegFloat = Field(0.25, description="seconds between market steps")
    sim_time_scale: PositiveFloat = Field(
        1.0, description="simulated seconds per real second (speeds up a demo market)"
    )
    sim_regime: Regime = Field(
        Regime.CHOPPY, description="starting regime: trending_up, trending_down or choppy"
    )
    sim_schedule: Annotated[str, Field(pattern=_SIM_SCHEDULE)] = Field(
        "demo",
        description="regime schedule: demo (whole loop in ~3 min, exaggerated trends), "
        "off (hold OPTBOT_SIM_REGIME) or regime:seconds,... (simulated seconds)",
    )
    sim_account: str = Field("DU1234567", description="simulated (paper) account id")
    sim_net_liquidation: PositiveFloat = Field(3756.96, description="simulated starting equity")
    sim_lockstep: bool = Field(
        False,
        description="simulator: no clock of its own; time moves only by the control "
        "command advance (optbot backtest)",
    )
    sim_start: str = Field(
        "",
        description="simulator: start at the open of this NYSE session, YYYY-MM-DD (empty: now)",
    )
    sim_step_seconds: Annotated[float, Field(gt=0, le=3600)] = Field(
        5.0, description="simulator: simulated seconds per market step in lockstep"
    )

    @field_validator("sim_start")
    @classmethod
    def _check_sim_start(cls, value: str) -> str:
        """A calendar date; whether NYSE trades on it the simulator checks (its calendar)."""
        if value:
            try:
                dt.date.fromisoformat(value)
            except ValueError as exc:
                raise ValueError("expected a date YYYY-MM-DD, like 2026-03-02") from exc
            if len(value) != 10:
                raise ValueError("expected a date YYYY-MM-DD, like 2026-03-02")
        return value


class MarketDataSettings(Domain):
    """market_data's universe, bars, history warm-up and publishing cadence."""

    md_watchlist: str = Field(
        "SPY,QQQ,IWM,DIA,VIX,AAPL,MSFT,NVDA,AMZN,META,GOOGL,TSLA,AMD,NFLX,JPM,BAC,XOM,"
        "UNH,V,MA,COST,AVGO,CRM,ORCL,INTC",
        description="watched symbols, comma separated (VIX is the CBOE index)",
    )
    md_bar_seconds: Annotated[int, Field(ge=1, le=3600)] = Field(
        60, description="bar length in seconds"
    )
    md_bar_window: Annotated[int, Field(ge=40, le=100_000)] = Field(
        390, description="bars kept per symbol (memory and md:bars:{SYM})"
    )
    md_history_duration: str = Field("7200 S", description="history requested for warm-up")
    md_history_timeout_s: PositiveFloat = Field(
        120.0, description="market_data: seconds to wait for a history reply before asking again"
    )
    md_stale_s: PositiveFloat = Field(15.0, description="a quote older than this is stale")
    md_eval_interval_s: PositiveFloat = Field(5.0, description="seconds between screen runs")
    md_republish_s: PositiveFloat = Field(60.0, description="republish unchanged signals")

    @field_validator("md_bar_seconds")
    @classmethod
    def _check_bar_seconds(cls, value: int) -> int:
        if value not in IB_BAR_SECONDS:
            raise ValueError(f"expected one of IB's bar sizes in seconds: {sorted(IB_BAR_SECONDS)}")
        return value

    @field_validator("md_watchlist")
    @classmethod
    def _check_watchlist(cls, value: str) -> str:
        return _symbols(value)

    @property
    def watchlist(self) -> list[str]:
        return self.md_watchlist.split(",")


class MomentumSettings(Domain):
    """The momentum screen (``MomentumParams``): windows, liquidity filters, hours."""

    md_top_n: Annotated[int, Field(ge=1, le=100)] = Field(5, description="candidates published")
    md_min_price: NonNegFloat = Field(5.0, description="screen: minimum price")
    md_max_spread_pct: PositiveFloat = Field(0.5, description="screen: max spread, % of mid")
    md_market_hours: MarketHours = Field(
        MarketHours.ALWAYS, description="always (simulated 24/7), regular or extended"
    )
    mom_short_bars: PositiveInt = Field(5, description="momentum: short ROC window (bars)")
    mom_mid_bars: PositiveInt = Field(15, description="momentum: middle ROC window (bars)")
    mom_long_bars: PositiveInt = Field(30, description="momentum: long ROC window (bars)")


class SentimentSettings(Domain):
    """The market-sentiment rule (``SentimentParams``): windows, thresholds, hysteresis."""

    sent_trend_bars: PositiveInt = Field(30, description="sentiment: SPY/QQQ return window")
    sent_sma_bars: PositiveInt = Field(20, description="sentiment: moving-average window")
    sent_enter_pct: PositiveFloat = Field(0.20, description="sentiment: trend % to turn")
    sent_exit_pct: NonNegFloat = Field(0.05, description="sentiment: trend % to stay (hysteresis)")
    sent_vix_bars: PositiveInt = Field(10, description="sentiment: VIX change window (bars)")
    sent_vix_spike_pct: PositiveFloat = Field(8.0, description="sentiment: VIX rise % = risk-off")
    sent_vix_panic: PositiveFloat = Field(30.0, description="sentiment: VIX level = risk-off")
    sent_confirm: PositiveInt = Field(2, description="sentiment: evaluations to confirm a change")


class StrategySettings(Domain):
    """The strategy's cycle, option selection, pricing and exits (not its risk limits)."""

    strat_cycle_interval_s: PositiveFloat = Field(
        15.0, description="strategy: seconds between scheduled trading cycles"
    )
    strat_trade_neutral: bool = Field(
        False, description="strategy: open positions in NEUTRAL sentiment too"
    )
    strat_max_candidates: PositiveInt = Field(
        3, description="strategy: candidates considered per cycle (best scores first)"
    )
    strat_min_dte: NonNegInt = Field(14, description="strategy: shortest expiry, days")
    strat_max_dte: NonNegInt = Field(45, description="strategy: longest expiry, days")
    strat_delta_min: Annotated[float, Field(ge=0.0, le=1.0)] = Field(
        0.35, description="strategy: lowest |delta| of the chosen option"
    )
    strat_delta_max: Annotated[float, Field(ge=0.0, le=1.0)] = Field(
        0.50, description="strategy: highest |delta| of the chosen option"
    )
    strat_max_spread_pct: PositiveFloat = Field(
        15.0, description="strategy: max option spread, % of mid"
    )
    strat_min_volume: NonNegFloat = Field(0.0, description="strategy: minimum option volume")
    strat_chain_moneyness: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        0.10, description="strategy: strikes asked for, within this fraction of spot"
    )
    strat_chain_max_contracts: PositiveInt = Field(
        24, description="strategy: most options a chain request asks for (each is a line)"
    )
    strat_reentry_cooldown_s: NonNegFloat = Field(
        900.0,
        description="strategy: seconds after a losing round trip before the same underlying "
        "may be entered again (0: no cooldown)",
    )
    strat_chain_cooldown_s: NonNegFloat = Field(
        300.0,
        description="strategy: seconds before asking again for the chain of a symbol found "
        "unaffordable or without an eligible option (0: no cooldown)",
    )
    strat_chain_retry_move_pct: PositiveFloat = Field(
        2.0, description="strategy: an underlying move of this % ends a chain cooldown early"
    )
    strat_chain_timeout_s: PositiveFloat = Field(
        15.0, description="strategy: seconds to wait for an option chain reply"
    )
    strat_quote_wait_s: PositiveFloat = Field(
        4.0, description="strategy: seconds to wait for quotes of a new chain"
    )
    strat_limit_offset: Annotated[float, Field(ge=-0.5, le=0.5)] = Field(
        0.0, description="strategy: limit = mid + offset x spread (0 = mid, 0.5 = ask)"
    )
    strat_reprice_steps: NonNegInt = Field(
        3, description="strategy: reprices toward the far side before cancelling"
    )
    strat_reprice_interval_s: PositiveFloat = Field(
        5.0, description="strategy: seconds between reprices of a working order"
    )
    strat_take_profit_pct: PositiveFloat = Field(
        50.0, description="strategy: close when the option gains this % of premium"
    )
    strat_stop_loss_pct: PositiveFloat = Field(
        30.0, description="strategy: close when the option loses this % of premium"
    )
    strat_max_hold_s: PositiveFloat = Field(
        5 * 86_400.0, description="strategy: close a position held this long (seconds)"
    )
    strat_exit_dte: NonNegInt = Field(
        7, description="strategy: close before the option has fewer days left"
    )
    strat_exit_on_flip: bool = Field(
        True, description="strategy: close when sentiment turns against the position"
    )
    strat_starting_equity: PositiveFloat = Field(
        3756.96,
        description="strategy: opening equity until the traded book's first account snapshot; "
        "also where the adapter's simulated book starts when IB's NetLiquidation is unknown",
    )

    @field_validator("strat_max_dte", "strat_delta_max")
    @classmethod
    def _check_window(cls, value: float, info: ValidationInfo) -> float:
        low = {"strat_max_dte": "strat_min_dte", "strat_delta_max": "strat_delta_min"}
        other = low[str(info.field_name)]
        if other in info.data and value < info.data[other]:
            raise ValueError(f"must be >= {env_name(other)} ({info.data[other]})")
        return value


class RiskSettings(Domain):
    """Pre-trade risk limits (``RiskLimits``): premium, positions, loss, order rate."""

    risk_max_premium_pct: Annotated[float, Field(gt=0.0, le=100.0)] = Field(
        5.0, description="risk: max premium per trade, % of the day's opening equity"
    )
    risk_max_total_premium_pct: Annotated[float, Field(gt=0.0, le=100.0)] = Field(
        15.0, description="risk: max premium at risk over all positions, % of opening equity"
    )
    risk_max_positions: PositiveInt = Field(3, description="risk: max open positions")
    risk_max_contracts: PositiveInt = Field(2, description="risk: max contracts per position")
    risk_max_daily_loss_pct: Annotated[float, Field(gt=0.0, le=100.0)] = Field(
        4.0, description="risk: daily loss, % of the day's opening equity, that stops entries"
    )
    risk_max_orders_per_min: PositiveInt = Field(10, description="risk: max new orders per minute")
    risk_max_quote_age_s: PositiveFloat = Field(
        5.0, description="risk: no new order on a quote/greeks older than this (local clock)"
    )


class MonitorSettings(Domain):
    """The dashboard: address, read token, proxies, live updates, request limits."""

    monitor_host: str = Field("127.0.0.1", description="dashboard bind address")
    monitor_port: Port = Field(5001, description="dashboard port")
    monitor_read_token: SecretStr = Field(
        SecretStr(""),
        description="token for the read API, live updates and /metrics, at least 24 characters "
        "(empty: reads open; set it when the dashboard is reachable beyond loopback)",
    )
    monitor_trusted_proxies: str = Field(
        "",
        description="comma-separated addresses or networks of reverse proxies whose "
        "X-Forwarded-For/-Proto are believed (empty: none)",
    )
    monitor_sse_max_clients: PositiveInt = Field(
        20, description="live-update (SSE) connections at once; more get 503"
    )
    monitor_push_hz: Annotated[float, Field(gt=0, le=20)] = Field(
        4.0, description="most live updates per second per dashboard panel (coalesced)"
    )
    monitor_refresh_s: Annotated[float, Field(ge=0.1, le=60)] = Field(
        1.0, description="seconds between periodic panel refreshes (heartbeat ages, staleness)"
    )
    monitor_control_max_failures: PositiveInt = Field(
        5, description="failed control attempts from one client before a lockout"
    )
    monitor_control_lockout_s: PositiveFloat = Field(
        60.0, description="window of those failures, and the lockout after them"
    )
    monitor_max_body_bytes: Annotated[int, Field(ge=1024, le=10_000_000)] = Field(
        65_536, description="largest request body the monitor reads (larger: 413)"
    )
    monitor_ready_stale_s: PositiveFloat = Field(
        30.0, description="/readyz fails when the newest quote is older than this"
    )

    @field_validator("monitor_read_token")
    @classmethod
    def _check_read_token(cls, value: SecretStr) -> SecretStr:
        return _token(value)

    @field_validator("monitor_trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: str) -> str:
        items = [v.strip() for v in value.split(",") if v.strip()]
        for item in items:
            try:
                ipaddress.ip_network(item)
            except ValueError as exc:
                raise ValueError(
                    f"{item!r} is not an IP address or network (e.g. 172.18.0.0/16, 10.0.0.5); "
                    "'*' is not allowed: every client could then pick its own address"
                ) from exc
        return ",".join(items)


class ControlSettings(Domain):
    """Operator controls (shared/control.py): sent by the CLI and monitor, applied by strategy."""

    control_token: SecretStr = Field(
        SecretStr(""),
        description="Bearer token for control endpoints, at least 24 characters (empty: disabled)",
    )
    control_timeout_s: Annotated[float, Field(gt=0, le=300)] = Field(
        10.0,
        description="seconds the CLI and the dashboard wait for the strategy to apply a "
        "control (after that the request expires unapplied)",
    )

    @field_validator("control_token")
    @classmethod
    def _check_control_token(cls, value: SecretStr) -> SecretStr:
        return _token(value)


class NotifierSettings(Domain):
    """Alerts to the trader's channels: URLs, thresholds, rates, the daily summary."""

    alert_urls: SecretStr = Field(
        SecretStr(""),
        description="Apprise URLs, one per channel, separated by spaces or commas "
        "(tgram://, ntfy://, mailto://, json://; secret, never shown; empty: no delivery)",
    )
    alert_gateway_down_s: PositiveFloat = Field(
        60.0, description="alert when the gateway (or IB, 1100) is down longer than this"
    )
    alert_repeat_s: PositiveFloat = Field(
        1800.0, description="repeat an open alert this often while it lasts"
    )
    alert_dedup_s: PositiveFloat = Field(
        300.0, description="the same one-off alert (same key) is sent once per this window"
    )
    alert_rate_per_min: PositiveInt = Field(
        20, description="most messages per minute per channel (the rest wait their turn)"
    )
    alert_retry_max_s: PositiveFloat = Field(
        300.0, description="longest wait between retries of a failing channel (doubles)"
    )
    alert_send_timeout_s: PositiveFloat = Field(
        15.0, description="seconds one delivery to one channel may take"
    )
    alert_dlq_window_s: PositiveFloat = Field(
        300.0, description="dead letters are counted over this window"
    )
    alert_dlq_threshold: PositiveInt = Field(
        10, description="dead letters within the window that raise an alert"
    )
    alert_fills: bool = Field(False, description="also send a message for every fill")
    alert_summary_at: str = Field(
        "16:15", description="daily summary after the NYSE close, HH:MM America/New_York"
    )
    alert_watch_interval_s: PositiveFloat = Field(
        1.0, description="seconds between the notifier's checks (timers, heartbeats, DLQ)"
    )

    @field_validator("alert_urls")
    @classmethod
    def _check_alert_urls(cls, value: SecretStr) -> SecretStr:
        words = [w.strip(",") for w in value.get_secret_value().split() if w.strip(",")]
        bad = sum(1 for w in words if "://" not in w)
        if bad:  # never echo the value: it holds tokens
            raise ValueError(f"{bad} entry(ies) are not URLs like tgram://TOKEN/CHAT_ID")
        return value

    @field_validator("alert_summary_at")
    @classmethod
    def _check_summary_at(cls, value: str) -> str:
        return _hh_mm(value)


# Every domain by the name services declare reads with (shared/settings_reads.py).
DOMAINS: dict[str, type[Domain]] = {
    "process": ProcessSettings,
    "redis": RedisSettings,
    "bus": BusSettings,
    "ib": IbSettings,
    "ib_restart": IbRestartSettings,
    "gateway": GatewaySettings,
    "sim": SimSettings,
    "market_data": MarketDataSettings,
    "momentum": MomentumSettings,
    "sentiment": SentimentSettings,
    "strategy": StrategySettings,
    "risk": RiskSettings,
    "monitor": MonitorSettings,
    "control": ControlSettings,
    "notifier": NotifierSettings,
}

D = TypeVar("D", bound=Domain)


# pydantic orders inherited fields from the last base to the first, so the domains are
# listed in reverse: the tables in docs/configuration.md then read in the order of ``DOMAINS``.
class Settings(
    NotifierSettings,
    ControlSettings,
    MonitorSettings,
    RiskSettings,
    StrategySettings,
    SentimentSettings,
    MomentumSettings,
    MarketDataSettings,
    SimSettings,
    GatewaySettings,
    IbRestartSettings,
    IbSettings,
    BusSettings,
    RedisSettings,
    ProcessSettings,
    BaseSettings,
):
    """Every tunable of optbot: all domains, loaded from the environment at once.

    Field descriptions feed the configuration tables and errors. The typed accessors below
    (``settings.risk``...) give one domain's values as that domain's own model.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",  # .env may hold other tools' keys (TWS_USERID); ours are checked below
        frozen=True,
        validate_default=True,
    )

    def domain(self, model: type[D]) -> D:
        """This settings' values of one domain, as that domain's model (validated already)."""
        return model.model_construct(**{name: getattr(self, name) for name in model.model_fields})

    @property
    def process(self) -> ProcessSettings:
        return self.domain(ProcessSettings)

    @property
    def redis(self) -> RedisSettings:
        return self.domain(RedisSettings)

    @property
    def bus(self) -> BusSettings:
        return self.domain(BusSettings)

    @property
    def ib(self) -> IbSettings:
        return self.domain(IbSettings)

    @property
    def ib_restart(self) -> IbRestartSettings:
        return self.domain(IbRestartSettings)

    @property
    def gateway(self) -> GatewaySettings:
        return self.domain(GatewaySettings)

    @property
    def sim(self) -> SimSettings:
        return self.domain(SimSettings)

    @property
    def market_data(self) -> MarketDataSettings:
        return self.domain(MarketDataSettings)

    @property
    def momentum(self) -> MomentumSettings:
        return self.domain(MomentumSettings)

    @property
    def sentiment(self) -> SentimentSettings:
        return self.domain(SentimentSettings)

    @property
    def strategy(self) -> StrategySettings:
        return self.domain(StrategySettings)

    @property
    def risk(self) -> RiskSettings:
        return self.domain(RiskSettings)

    @property
    def monitor(self) -> MonitorSettings:
        return self.domain(MonitorSettings)

    @property
    def control(self) -> ControlSettings:
        return self.domain(ControlSettings)

    @property
    def notifier(self) -> NotifierSettings:
        return self.domain(NotifierSettings)


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def _describe(error: dict[str, Any]) -> str:
    loc = error.get("loc") or ("?",)
    field = str(loc[0])
    name = env_name(field)
    given = error.get("input")
    field_info = Settings.model_fields.get(field)
    if field_info is not None and field_info.annotation is SecretStr:
        given = "***"  # a secret is never echoed, not even a wrong one
    elif isinstance(given, str):
        given = redact_url(given) if field == "redis_url" else redact_text(given)
    msg = str(error.get("msg", "invalid value"))
    msg = msg.removeprefix("Value error, ")
    hint = f" ({field_info.description})" if field_info and field_info.description else ""
    if error.get("type") == "extra_forbidden":
        return f"{name}: unknown setting{_suggest(field)}"
    return f"{name}={given!r}: {msg}{hint}"


def _suggest(field: str) -> str:
    close = difflib.get_close_matches(field, list(Settings.model_fields), n=1)
    return f"; did you mean {env_name(close[0])}?" if close else ""


def unknown_env_vars(
    environ: Mapping[str, str] | None = None, env_file: Path | None = Path(".env")
) -> list[str]:
    """``OPTBOT_*`` names in the environment or ``.env`` that match no setting.

    A typo must not pass silently; other keys in ``.env`` (compose's TWS_USERID) are
    not ours and are left alone.
    """
    names = set(os.environ if environ is None else environ)
    if env_file is not None and env_file.is_file():
        names |= {k for k in dotenv_values(env_file) if k}
    known = {env_name(f) for f in Settings.model_fields}
    return sorted(k for k in names if k.upper().startswith(ENV_PREFIX) and k.upper() not in known)


# Settings that were removed, and what to do instead (a plain "unknown" would puzzle).
REMOVED = {
    "OPTBOT_IB_PASSWORD": "removed: optbot never logs on to IB; the IB password belongs "
    "to the IB Gateway container only (compose secret ib_password, see README)",
}


def _unknown(name: str) -> str:
    if name.upper() in REMOVED:
        return f"{name}: {REMOVED[name.upper()]}"
    return f"{name}: unknown setting{_suggest(name.removeprefix(ENV_PREFIX).lower())}"


def load_settings(**overrides: Any) -> Settings:
    """Build and validate settings, or raise ``ConfigError`` naming each bad variable."""
    problems = [_unknown(name) for name in unknown_env_vars()]
    settings: Settings | None = None
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        problems.extend(_describe(dict(e)) for e in exc.errors())
    if problems or settings is None:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return settings
