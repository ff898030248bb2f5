"""Redis ACL users against a real redis-server loading the file `optbot acl` prints.

Each service may do what it does (its streams, its keys, its consumer groups, the DLQ,
its heartbeat) and is refused with NOPERM what it must not: orders from anyone but the
strategy and the operator, risk:state from everyone but the strategy (the operator
too), FLUSHALL/CONFIG/ACL/DEBUG from any service. The default user is off.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError, NoPermissionError

from shared.acl import ADMIN, OPERATOR, USERS, password_hash, render_acl
from shared.bus import GroupConsumer, Publisher, RequestClient, connect_redis
from shared.contract import (
    GW_COMMANDS,
    GW_STATUS,
    MD_SIGNALS,
    MD_TICKS,
    NOTIFIER_OPEN,
    ORDERS_EVENTS,
    ORDERS_REQUESTS,
    RISK_STATE,
    STRATEGY_PNL,
    STRATEGY_POSITIONS,
    SYS_ALERTS,
    SYS_CONTROL,
    SYS_DLQ,
    notifier_outbox_key,
    reply_stream,
    service_key,
)
from shared.envelope import decode, encode
from shared.redis_auth import Credentials, credentials, ensure_passwords
from shared.redis_server import RedisHandle, start_redis
from shared.runner import ServiceContext, run_service
from shared.schemas import (
    Alert,
    AlertSeverity,
    Control,
    ControlAction,
    OptionChain,
    OptionChainRequest,
)
from shared.settings import ConfigError, load_settings
from tests.conftest import redis_binary
from tests.helpers import wait_until
from tests.running import strategy_running

SERVICE_USERS = [u.name for u in USERS if u.name != OPERATOR]


@dataclass
class AclRedis:
    handle: RedisHandle
    secrets: Path
    passwords: dict[str, str]

    @property
    def url(self) -> str:
        return self.handle.url

    def client(self, name: str) -> aioredis.Redis:
        return connect_redis(self.url, username=name, password=self.passwords[name])


@pytest.fixture(scope="module")
def acl_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AclRedis]:
    root = tmp_path_factory.mktemp("acl")
    passwords = ensure_passwords(root / "secrets", [u.name for u in USERS])
    acl_file = root / "users.acl"
    acl_file.write_text(render_acl(passwords))
    # DEBUG allowed from loopback, so it is the ACL that refuses it to a service
    args = ("--aclfile", str(acl_file), "--enable-debug-command", "local")
    handle = start_redis(redis_binary(), root / "data", appendonly=False, extra_args=args)
    yield AclRedis(handle, root / "secrets", passwords)
    handle.stop()


@pytest.fixture
async def as_user(acl_redis: AclRedis) -> AsyncIterator[Any]:
    """``as_user(name)``: a client logged in as that ACL user; the store starts empty."""
    clients: list[aioredis.Redis] = []
    admin = acl_redis.client(OPERATOR)
    await admin.flushall()
    await admin.acl_log_reset()
    clients.append(admin)

    def make(name: str) -> aioredis.Redis:
        c = acl_redis.client(name)
        clients.append(c)
        return c

    yield make
    for c in clients:
        await c.aclose()


# --- the file ----------------------------------------------------------------------------


def test_render_when_passwords_given_prints_hashes_never_plaintext() -> None:
    passwords = {u.name: f"pw-{u.name}-0123456789" for u in USERS}
    text = render_acl(passwords)
    assert all(p not in text for p in passwords.values())
    assert all(password_hash(p) in text for p in passwords.values())
    assert text.splitlines()[-1].startswith("user default off")
    assert len(text.splitlines()) == len(USERS) + 1  # one line per user: no comments


def test_render_when_a_password_missing_names_the_user() -> None:
    passwords = {u.name: "pw" for u in USERS if u.name != "monitor"}
    with pytest.raises(ValueError, match="monitor"):
        render_acl(passwords)


# --- refused -----------------------------------------------------------------------------


async def test_default_user_when_acl_loaded_is_refused(acl_redis: AclRedis) -> None:
    anonymous = connect_redis(acl_redis.url)
    try:
        with pytest.raises(AuthenticationError):
            await anonymous.xadd(ORDERS_REQUESTS, {"type": "order.new"})
    finally:
        await anonymous.aclose()


async def test_wrong_password_when_acl_loaded_is_refused(acl_redis: AclRedis) -> None:
    intruder = connect_redis(acl_redis.url, username="strategy", password="guess")
    try:
        with pytest.raises(AuthenticationError):
            await intruder.ping()
    finally:
        await intruder.aclose()


FORBIDDEN: list[tuple[str, str, tuple[Any, ...]]] = [
    ("monitor", "XADD", (ORDERS_REQUESTS, "*", "type", "order.new")),
    ("market_data", "XADD", (ORDERS_REQUESTS, "*", "type", "order.new")),
    ("gateway_adapter", "XADD", (ORDERS_REQUESTS, "*", "type", "order.new")),
    ("notifier", "XADD", (ORDERS_REQUESTS, "*", "type", "order.new")),
    ("strategy", "DEL", (ORDERS_EVENTS,)),
    ("monitor", "XADD", (ORDERS_EVENTS, "*", "type", "fill")),
    ("market_data", "HSET", (RISK_STATE, "state", "ACTIVE")),
    ("gateway_adapter", "HSET", (RISK_STATE, "state", "ACTIVE")),
    ("notifier", "HSET", (RISK_STATE, "state", "ACTIVE")),
    # the strategy alone writes risk:state: the dashboard and the CLI ask it
    ("monitor", "HSET", (RISK_STATE, "state", "ACTIVE")),
    (OPERATOR, "HSET", (RISK_STATE, "state", "ACTIVE")),
    (OPERATOR, "DEL", (RISK_STATE,)),
    ("market_data", "HGETALL", ("orders:seen",)),
    ("market_data", "DEL", ("orders:seen",)),
    ("monitor", "DEL", (MD_TICKS,)),
    ("strategy", "XTRIM", (ORDERS_EVENTS, "MAXLEN", "0")),
    ("monitor", "XREADGROUP", ("GROUP", "g", "c", "STREAMS", ORDERS_REQUESTS, ">")),
    ("tws_simulator", "XADD", (MD_TICKS, "*", "type", "quote")),
    ("notifier", "HSET", ("svc:strategy", "heartbeat", "1")),
    # replies go to their requester only: no broadcast, no md:signals, no one else's stream
    ("gateway_adapter", "XADD", (MD_SIGNALS, "*", "type", "history")),
    ("market_data", "XREAD", ("STREAMS", reply_stream("strategy"), "0")),
    ("strategy", "XREAD", ("STREAMS", reply_stream("market_data"), "0")),
    ("strategy", "XADD", (reply_stream("strategy"), "*", "type", "option_chain")),
]


@pytest.mark.parametrize(("name", "command", "args"), FORBIDDEN, ids=lambda v: str(v)[:24])
async def test_service_when_command_outside_its_contract_gets_noperm(
    as_user: Any, name: str, command: str, args: tuple[Any, ...]
) -> None:
    with pytest.raises(NoPermissionError):
        await as_user(name).execute_command(command, *args)


@pytest.mark.parametrize("name", SERVICE_USERS)
async def test_service_when_admin_command_gets_noperm(as_user: Any, name: str) -> None:
    client = as_user(name)
    for command in (("FLUSHALL",), ("FLUSHDB",), ("CONFIG", "GET", "*"), ("ACL", "LIST"),
                    ("DEBUG", "SLEEP", "0"), ("KEYS", "*"), ("SHUTDOWN", "NOSAVE")):  # fmt: skip
        assert command[0].lower() in ADMIN
        with pytest.raises(NoPermissionError):
            await client.execute_command(*command)


# --- allowed -----------------------------------------------------------------------------


async def test_strategy_and_operator_when_sending_orders_may_xadd_requests(as_user: Any) -> None:
    for name in ("strategy", OPERATOR):
        await as_user(name).xadd(ORDERS_REQUESTS, {"type": "order.new"})
    assert await as_user(OPERATOR).xlen(ORDERS_REQUESTS) == 2


async def test_adapter_when_consuming_requests_may_read_ack_and_claim_but_not_add(
    as_user: Any,
) -> None:
    adapter, strategy = as_user("gateway_adapter"), as_user("strategy")
    await adapter.xgroup_create(ORDERS_REQUESTS, "gateway_adapter", "$", mkstream=True)
    entry = await strategy.xadd(ORDERS_REQUESTS, {"type": "order.new"})
    got = await adapter.xreadgroup("gateway_adapter", "a1", {ORDERS_REQUESTS: ">"}, count=10)
    assert got[0][1][0][0] == entry
    await adapter.xautoclaim(ORDERS_REQUESTS, "gateway_adapter", "a2", 0)
    assert await adapter.xack(ORDERS_REQUESTS, "gateway_adapter", entry) == 1
    assert await adapter.xinfo_groups(ORDERS_REQUESTS)
    await adapter.xadd(ORDERS_EVENTS, {"type": "fill"})  # its own stream
    with pytest.raises(NoPermissionError):
        await adapter.xadd(ORDERS_REQUESTS, {"type": "order.new"})


async def test_notifier_when_watching_consumes_and_reads_what_its_watcher_uses(
    as_user: Any,
) -> None:
    """Its watcher's groups (gw:status, sys:control, orders:events) and the keys its
    checks read (held positions, P&L for the summary, the DLQ): declared in the contract."""
    notifier = as_user("notifier")
    for stream in (GW_STATUS, SYS_CONTROL, ORDERS_EVENTS, SYS_ALERTS):
        await notifier.xgroup_create(stream, "notifier", "0", mkstream=True)
        assert await notifier.xreadgroup("notifier", "n1", {stream: ">"}, count=1) == []
    assert await notifier.hkeys(STRATEGY_POSITIONS) == []
    assert await notifier.hgetall(STRATEGY_PNL) == {}
    assert await notifier.xrevrange(SYS_DLQ, count=1) == []
    assert await notifier.xrange(ORDERS_EVENTS, count=1) == []
    # its outbox (a queue per channel) and the open conditions (WATCH then MULTI)
    outbox = notifier_outbox_key("ch")
    await notifier.rpush(outbox, "m1")
    assert await notifier.lindex(outbox, 0) == b"m1" and await notifier.lpop(outbox) == b"m1"
    async with notifier.pipeline(transaction=True) as pipe:
        await pipe.watch(NOTIFIER_OPEN)
        pipe.multi()
        pipe.hset(NOTIFIER_OPEN, "k", "{}")
        await pipe.execute()
    assert await as_user(OPERATOR).acl_log() == []


async def test_requester_when_asking_the_adapter_gets_its_reply_under_acl(as_user: Any) -> None:
    strategy, adapter = as_user("strategy"), as_user("gateway_adapter")
    settings = load_settings(consume_block_ms=100)
    client = RequestClient(
        strategy,
        Publisher(strategy, settings, src="strategy/t"),
        settings,
        requester="strategy",
        replies=(OptionChain,),
        timeout_s=5,
    )
    stop = asyncio.Event()
    reader = asyncio.create_task(client.run(stop))
    try:
        asking = asyncio.create_task(
            client.ask(
                GW_COMMANDS, OptionChainRequest(request_id="", underlying="SPY"), OptionChain
            )
        )
        sent = await wait_until(lambda: adapter.xrange(GW_COMMANDS), what="request")
        req = decode(sent[0][1]).body
        reply = OptionChain(request_id=req.request_id, underlying="SPY", contracts=[])
        await adapter.xadd(reply_stream(req.requester), encode(reply, "gateway_adapter/t"))
        assert (await asyncio.wait_for(asking, 5)).request_id == req.request_id
    finally:
        stop.set()
        await asyncio.wait_for(reader, 5)


async def test_every_service_when_reading_heartbeats_sees_them_all(as_user: Any) -> None:
    for name in SERVICE_USERS:
        client = as_user(name)
        await client.hset(service_key(name), mapping={"heartbeat": "1"})
        await client.pexpire(service_key(name), 10_000)
        await client.hset(service_key(name) + ":standby:x", mapping={"heartbeat": "1"})
    reader = as_user("tws_simulator")
    keys = {k async for k in reader.scan_iter(match="svc:*")}
    assert len(keys) == 2 * len(SERVICE_USERS)
    assert await reader.hgetall(service_key("strategy")) == {b"heartbeat": b"1"}


async def test_monitor_and_operator_when_steering_may_request_but_not_set_risk_state(
    as_user: Any,
) -> None:
    from shared.control import send_control

    settings = load_settings()
    for name in ("monitor", OPERATOR):
        body = Control(action=ControlAction.HALT, who=name, why="test")
        await send_control(as_user(name), settings, body, src=name)
        with pytest.raises(NoPermissionError):
            await as_user(name).hset(RISK_STATE, "state", "HALTED")
        assert await as_user(name).hget(RISK_STATE, "state") is None  # may read it
    admin = as_user(OPERATOR)
    assert await admin.xlen(SYS_CONTROL) == 2
    assert not await admin.exists(RISK_STATE)
    # every other key stays the operator's to write, even its near namesakes
    for key in ("risk:stat", "risk:states", "risk:state:x", "risk", "Risk:state", "x"):
        await admin.set(key, "1")


async def test_operator_when_popping_a_list_may_read_and_write_it(as_user: Any) -> None:
    """Commands that read and write one key (LPOP, BLPOP: the backtest driver pops the
    services' clock acks) need one key pattern granting both on Redis 7.0, not a %R~
    and a %W~ pattern side by side."""
    from shared.contract import clock_ack_key

    key = clock_ack_key("strategy")
    await as_user("strategy").rpush(key, b"{}")
    admin = as_user(OPERATOR)
    assert await admin.blpop([key], timeout=1) == (key.encode(), b"{}")
    await admin.rpush("x", "1")
    assert await admin.lpop("x") == b"1"
    with pytest.raises(NoPermissionError):
        await admin.getdel(RISK_STATE)  # still read-only for the operator


async def test_strategy_when_risk_engine_reduces_sets_state_and_records_control(
    as_user: Any,
) -> None:
    from decimal import Decimal

    from services.strategy.desk import Books, Desk
    from services.strategy.ledger import Ledger
    from services.strategy.market import MarketView
    from services.strategy.orders import OrderBook
    from services.strategy.risk import RiskEngine, RiskLimits, RiskState, RiskStatus
    from shared.settings import RiskSettings

    strategy = as_user("strategy")
    settings = load_settings()
    books = Books(Ledger(Decimal(1000)), OrderBook(), MarketView(), RiskStatus(RiskState.ACTIVE))
    desk = Desk(
        books,
        risk=RiskEngine(RiskLimits.from_settings(RiskSettings())),
        publisher=Publisher(strategy, settings, src="strategy/t"),
        redis=strategy,
        settings=settings,
    )
    await desk.set_state(RiskState.REDUCING, "daily loss", "risk-engine", breach_day="2026-12-02")
    admin = as_user(OPERATOR)
    assert await admin.hget(RISK_STATE, "state") == b"REDUCING"
    assert await admin.xlen(SYS_CONTROL) == 1


async def test_consumer_when_entry_is_poison_each_service_dead_letters_it(as_user: Any) -> None:
    """The DLQ is written by every consumer: a bad entry is parked and acked, not refused."""
    settings = load_settings(consume_block_ms=50)
    streams = {u.name: u.consumes[0] for u in USERS if u.consumes}
    for name, stream in streams.items():
        client = as_user(name)
        consumer = GroupConsumer(
            client, settings, stream=stream, group=name, consumer="c", handler=_never
        )
        await consumer.ensure_group()
        await as_user(OPERATOR).xadd(stream, {"type": "no.such.type", "v": "1", "body": "{"})
        await consumer.poll_once()
        assert consumer.dead_lettered == 1, name
    admin = as_user(OPERATOR)
    assert await admin.xlen(SYS_DLQ) == len(streams)
    assert await admin.acl_log() == []


async def _never(msg: Any) -> None:
    raise AssertionError(f"a poison entry reached the handler: {msg}")


# --- the runner connects as the service's own user -----------------------------------------


async def test_runner_when_secrets_dir_set_runs_notifier_as_its_own_user(
    acl_redis: AclRedis, as_user: Any
) -> None:
    """A service the runner starts: heartbeat, consumer group on sys:alerts, alert out."""
    settings = load_settings(
        redis_url=acl_redis.url,
        redis_secrets_dir=str(acl_redis.secrets),
        consume_block_ms=50,
        heartbeat_interval_s=0.1,
    )
    handled: list[str] = []

    async def main(ctx: ServiceContext) -> None:
        async def on_alert(msg: Any) -> None:
            handled.append(msg.key)

        ctx.consume(SYS_ALERTS, on_alert, start_id="0")

    stop = asyncio.Event()
    task = asyncio.create_task(run_service("notifier", main, settings, stop=stop))
    admin = as_user(OPERATOR)
    try:
        await wait_until(lambda: admin.exists(service_key("notifier")), timeout=10, what="hb")
        who = [c for c in await admin.client_list() if c.get("user") == "notifier"]
        assert who, "the notifier is connected as user notifier"
        await as_user("strategy").xadd(SYS_ALERTS, _alert())
        await wait_until(lambda: handled, timeout=10, what="alert handled")
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 30) == 0
    assert await admin.acl_log() == []


async def test_notifier_when_strategy_applies_a_halt_alerts_as_its_own_user(
    acl_redis: AclRedis, as_user: Any
) -> None:
    """The real notifier and strategy, each as its own user: a halt request is applied
    by the strategy and the notifier turns the applied state into an alert; no NOPERM."""
    from services.notifier.main import main as notifier_main
    from shared.control import request_control

    settings = load_settings(
        redis_url=acl_redis.url,
        redis_secrets_dir=str(acl_redis.secrets),
        consume_block_ms=100,
        heartbeat_interval_s=0.2,
    )
    admin = as_user(OPERATOR)
    stop = asyncio.Event()
    notifier = asyncio.create_task(run_service("notifier", notifier_main, settings, stop=stop))
    try:
        async with strategy_running(settings, admin):

            async def notifier_group() -> bool:
                groups: Any = await admin.xinfo_groups(SYS_CONTROL)
                return any(g["name"] == b"notifier" for g in groups)

            await wait_until(notifier_group, timeout=15, what="the notifier's sys:control group")
            body = Control(action=ControlAction.HALT, who="ann", why="acl test")
            reply = await request_control(as_user(OPERATOR), settings, body, src="cli/ann")
            assert reply.change is not None and reply.change.state.value == "HALTED"

            async def risk_alert() -> bool:
                rows: Any = await admin.xrange(SYS_ALERTS)
                return any(b"trading HALTED by ann" in f[b"body"] for _, f in rows)

            await wait_until(risk_alert, timeout=15, what="the risk alert")
    finally:
        stop.set()
        assert await asyncio.wait_for(notifier, 30) == 0
    assert await admin.acl_log() == []


def _alert() -> dict[str, Any]:
    body = Alert(code="k", severity=AlertSeverity.WARNING, message="m")
    return dict(encode(body, src="t", key="k"))


async def test_runner_when_password_file_missing_exits_with_clear_error(tmp_path: Path) -> None:
    settings = load_settings(redis_secrets_dir=str(tmp_path))

    async def main(ctx: ServiceContext) -> None:
        raise AssertionError("must not start")

    assert await run_service("strategy", main, settings) == 2


def test_credentials_when_password_file_set_use_it_with_role_or_username(
    tmp_path: Path,
) -> None:
    (tmp_path / "pw").write_text("s3cret\n")
    s = load_settings(redis_password_file=str(tmp_path / "pw"))
    assert credentials(s, "strategy") == Credentials("strategy", "s3cret")
    assert "s3cret" not in repr(credentials(s, "strategy"))
    s = load_settings(redis_password_file=str(tmp_path / "pw"), redis_username="monitor")
    assert credentials(s, OPERATOR) == Credentials("monitor", "s3cret")
    assert credentials(load_settings(), "strategy") is None
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match=r"OPTBOT_REDIS_PASSWORD_FILE.*empty"):
        credentials(load_settings(redis_password_file=str(tmp_path / "empty")), "x")


# --- the CLI as operator -------------------------------------------------------------------


def _optbot(acl_redis: AclRedis, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTBOT_")}
    env.update(OPTBOT_REDIS_URL=acl_redis.url, OPTBOT_REDIS_SECRETS_DIR=str(acl_redis.secrets))
    return subprocess.run(
        [sys.executable, "-m", "optbot.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


async def test_cli_when_steering_as_operator_halts_resumes_and_flattens(
    acl_redis: AclRedis, as_user: Any
) -> None:
    """The operator asks, the strategy (as its own user) applies: a real round trip."""
    settings = load_settings(redis_url=acl_redis.url, redis_secrets_dir=str(acl_redis.secrets))
    admin = as_user(OPERATOR)
    async with strategy_running(settings, admin):
        outs = [
            await asyncio.to_thread(_optbot, acl_redis, "halt", "--why", "t"),
            await asyncio.to_thread(_optbot, acl_redis, "resume", "--why", "t"),
            await asyncio.to_thread(_optbot, acl_redis, "flatten", "AAPL 20261218 250 C"),
            await asyncio.to_thread(_optbot, acl_redis, "tail", SYS_CONTROL),
        ]
    for proc in outs:
        assert proc.returncode == 0, proc.stderr
        assert all(p not in proc.stdout + proc.stderr for p in acl_redis.passwords.values())
    assert "risk state HALTED (was ACTIVE)" in outs[0].stdout
    assert "risk state ACTIVE (was HALTED)" in outs[1].stdout
    assert await admin.xlen(SYS_CONTROL) == 5  # three requests, two applied states
    assert await admin.hget(RISK_STATE, "state") == b"ACTIVE"
    assert "AAPL 20261218 250 C" in outs[3].stdout
    assert await admin.acl_log() == []  # nobody was refused anything on the way


def test_acl_command_when_run_writes_0600_secrets_and_a_loadable_file(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTBOT_")}
    args = [sys.executable, "-m", "optbot.cli", "acl", "--secrets-dir", str(tmp_path / "s")]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    files = sorted((tmp_path / "s").iterdir())
    assert [f.name for f in files] == sorted(u.name for u in USERS)
    assert all(f.stat().st_mode & 0o777 == 0o600 for f in files)
    assert all(f.read_text().strip() not in proc.stdout + proc.stderr for f in files)
    (tmp_path / "users.acl").write_text(proc.stdout)
    handle = start_redis(
        redis_binary(),
        tmp_path / "data",
        appendonly=False,
        extra_args=("--aclfile", str(tmp_path / "users.acl")),
    )
    handle.stop()  # it started: Redis loaded the file
    again = subprocess.run(args, capture_output=True, text=True, timeout=60, env=env)
    assert again.stdout == proc.stdout  # existing passwords are kept


def test_acl_command_when_no_generate_and_secret_missing_exits_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTBOT_")}
    args = ["acl", "--no-generate", "--secrets-dir", str(tmp_path)]
    proc = subprocess.run(
        [sys.executable, "-m", "optbot.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 2 and "gateway_adapter" in proc.stderr


def test_restart_when_aof_holds_service_transactions_replays_them_all(tmp_path: Path) -> None:
    """Redis replays the AOF as ``default``: a locked-down default user would drop every
    MULTI/EXEC and script effect (order journal, control actions) on restart."""
    import redis as syncredis

    passwords = ensure_passwords(tmp_path / "secrets", [u.name for u in USERS])
    (tmp_path / "users.acl").write_text(render_acl(passwords))
    args = ("--aclfile", str(tmp_path / "users.acl"))

    def client(handle: RedisHandle, name: str) -> syncredis.Redis:
        return syncredis.Redis.from_url(handle.url, username=name, password=passwords[name])

    first = start_redis(redis_binary(), tmp_path / "data", appendonly=True, extra_args=args)
    try:
        with client(first, "strategy").pipeline(transaction=True) as pipe:
            pipe.hset(RISK_STATE, "state", "HALTED")
            pipe.xadd(SYS_CONTROL, {"type": "control"})
            pipe.execute()
        adapter = client(first, "gateway_adapter")
        adapter.eval("return redis.call('XADD', KEYS[1], '*', 'type', 'fill')", 1, ORDERS_EVENTS)
    finally:
        first.stop()
    second = start_redis(redis_binary(), tmp_path / "data", appendonly=True, extra_args=args)
    try:
        admin = client(second, OPERATOR)
        assert admin.hget(RISK_STATE, "state") == b"HALTED"
        assert (admin.xlen(SYS_CONTROL), admin.xlen(ORDERS_EVENTS)) == (1, 1)
    finally:
        second.stop()


async def test_health_when_run_as_a_service_user_reads_heartbeats(
    acl_redis: AclRedis, as_user: Any
) -> None:
    """Compose's health check: `optbot health NAME` inside the service's own container."""
    await as_user("tws_simulator").hset(service_key("tws_simulator"), mapping=_heartbeat())
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTBOT_")}
    env.update(
        OPTBOT_REDIS_URL=acl_redis.url,
        OPTBOT_REDIS_USERNAME="tws_simulator",
        OPTBOT_REDIS_PASSWORD_FILE=str(acl_redis.secrets / "tws_simulator"),
    )
    args = [sys.executable, "-m", "optbot.cli", "health", "tws_simulator"]
    proc = await asyncio.to_thread(
        subprocess.run, args, capture_output=True, text=True, timeout=60, env=env
    )
    assert proc.returncode == 0 and "tws_simulator: healthy" in proc.stdout, proc.stderr
    assert await as_user(OPERATOR).acl_log() == []


def _heartbeat() -> dict[str, str]:
    import time

    now = f"{time.time():.3f}"
    return {"name": "tws_simulator", "heartbeat": now, "last_loop": now, "pid": "1"}


def test_acl_command_when_ha_adds_replication_and_sentinel_users_redis_loads(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTBOT_")}
    args = [sys.executable, "-m", "optbot.cli", "acl", "--ha", "--secrets-dir", str(tmp_path / "s")]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    names = sorted(f.name for f in (tmp_path / "s").iterdir())
    assert names == sorted([*(u.name for u in USERS), "replication", "sentinel"])
    lines = proc.stdout.splitlines()
    assert lines[-2].startswith("user replication on #") and "+psync" in lines[-2]
    assert lines[-1].startswith("user sentinel on #") and "+replicaof" in lines[-1]
    (tmp_path / "users.acl").write_text(proc.stdout)
    handle = start_redis(
        redis_binary(),
        tmp_path / "data",
        appendonly=False,
        extra_args=("--aclfile", str(tmp_path / "users.acl")),
    )
    handle.stop()  # it started: Redis loaded the file
