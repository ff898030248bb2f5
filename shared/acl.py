"""Who may touch what in Redis: one ACL user per service, and the operator.

Redis is the control plane: whoever can ``XADD orders:requests`` trades. So each
service connects as its own user allowed only the commands and keys it uses, and
the default user is off. The per-user list is hand-written here, in ONE place,
from the names in ``shared/streams.py`` and the private keys each service uses;
the bus contract will generate it later. ``render_acl`` turns it into a Redis 7
ACL file (``optbot acl``); passwords appear only as ``#<sha256>`` hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from shared import streams as s

OPERATOR = "operator"

# Every user: connection housekeeping, transactions, the heartbeat/health SCAN.
CONNECTION = (
    "ping", "echo", "hello", "select", "client|setname", "client|getname", "client|id",
    "multi", "exec", "discard", "scan",
)  # fmt: skip
# Not CLIENT SETINFO: Redis 7.0 does not know it (an ACL file naming it fails to load),
# and redis-py ignores its refusal.
# Read commands, on the keys a user may read (``%R~``).
READ = (
    "exists", "type", "ttl", "pttl", "get", "hget", "hmget", "hgetall", "hexists", "hlen",
    "hkeys", "lrange", "llen", "xlen", "xrange", "xrevrange", "xread", "xinfo|stream",
    "xinfo|groups", "xinfo|consumers", "xpending",
)  # fmt: skip
# A consumer group needs read-write access to the streams it reads (XREADGROUP moves
# entries into the group's pending list), but only these commands: no XADD there.
CONSUME = (
    "xreadgroup", "xack", "xautoclaim", "xclaim", "xgroup|create", "xgroup|createconsumer",
)  # fmt: skip
# Data writes, on the keys a user owns (it is their one writer).
WRITE = (
    "xadd", "xtrim", "xdel", "set", "del", "unlink", "expire", "pexpire", "persist", "hset",
    "hsetnx", "hdel", "hincrby", "hincrbyfloat", "rpush", "ltrim",
)  # fmt: skip
SCRIPTS = ("eval", "evalsha", "script|load")  # Lua runs with the caller's key permissions
ADMIN = ("flushall", "flushdb", "config", "acl", "debug", "shutdown", "keys", "monitor")


# ``default`` is off and has no password: nobody can log in as it. It keeps every
# permission because Redis replays the AOF as ``default`` and, up to 7.4, re-checks the
# ACL of each MULTI/EXEC it replays: a restricted default user silently drops every
# transaction (our order journal, control actions) on restart (redis/redis#14541).
DEFAULT_USER = "user default off resetpass resetkeys resetchannels ~* &* +@all"


@dataclass(frozen=True)
class RedisUser:
    """What one service may do: read, own (write), append to, consume; key patterns."""

    name: str
    why: str
    reads: tuple[str, ...] = ()
    owns: tuple[str, ...] = ()
    appends: tuple[str, ...] = ()  # XADD only: streams another service owns
    consumes: tuple[str, ...] = ()  # consumer-group reads (and the group's bookkeeping)
    scripts: bool = False
    commands: tuple[str, ...] = ()  # extra key-less commands (INFO)
    admin: bool = False


def _heartbeat(name: str) -> tuple[str, str]:
    """``svc:{name}`` and its standby/instance variants ``svc:{name}:*``."""
    return s.service_key(name), s.service_key(name) + ":*"


HEARTBEATS = s.service_key("*")  # every service reads them: `optbot health` runs in its box
ALERTS_AND_DLQ = (s.SYS_ALERTS, s.SYS_DLQ)

USERS: tuple[RedisUser, ...] = (
    RedisUser(
        "gateway_adapter",
        "the sole IB client: quotes, gateway status and replies, order events, account",
        reads=(HEARTBEATS,),
        owns=(
            *_heartbeat("gateway_adapter"),
            s.MD_TICKS,
            s.last_quote_key("*"),
            s.GW_STATUS,
            *(s.reply_stream(r) for r in s.REQUESTERS),  # each reply to its requester only
            s.ORDERS_EVENTS,
            s.ACCOUNT,
            "account:*",
            "gw:subs",
            "gw:contracts",
            "gw:lease:*",
            "orders:seen",
            "orders:working",
            "orders:ib",
            "orders:ib:states",
            "orders:execs",
            "sim:*",
        ),
        appends=ALERTS_AND_DLQ,
        consumes=(s.GW_COMMANDS, s.ORDERS_REQUESTS),
        scripts=True,  # batched quotes, order journal, lease renew/release
    ),
    RedisUser(
        "market_data",
        "bars, sentiment, momentum candidates; asks the adapter for lines and history",
        reads=(HEARTBEATS, s.last_quote_key("*"), s.reply_stream("market_data")),
        owns=(
            *_heartbeat("market_data"),
            s.MD_SIGNALS,
            "md:sentiment",
            "md:candidates",
            "md:bars:*",
        ),
        appends=(s.GW_COMMANDS, *ALERTS_AND_DLQ),
        consumes=(s.GW_STATUS, s.MD_TICKS),
    ),
    RedisUser(
        "strategy",
        "trading cycles, risk state, ledger views; the one sender of orders",
        # orders:requests: it replays the orders it sent to rebuild its books at start.
        reads=(
            HEARTBEATS,
            s.last_quote_key("*"),
            "md:sentiment",
            "md:candidates",
            "account:*",
            s.ORDERS_REQUESTS,
            s.reply_stream("strategy"),  # its replies: XREAD, no group (shared.bus.request)
        ),
        owns=(*_heartbeat("strategy"), s.RISK_STATE, s.STRATEGY_DECISIONS, "strategy:*"),
        # orders:events: its risk denials (``denied``) go there too, a second writer the
        # bus contract should remove (strategy:decisions already records them).
        # sys:control: a halt by the risk engine itself is recorded as a control event.
        appends=(
            s.ORDERS_REQUESTS,
            s.ORDERS_EVENTS,
            s.SYS_CONTROL,
            s.GW_COMMANDS,
            *ALERTS_AND_DLQ,
        ),
        consumes=(
            s.ORDERS_EVENTS,
            s.MD_TICKS,
            s.MD_SIGNALS,
            s.GW_STATUS,
            s.SYS_CONTROL,
            s.ACCOUNT,
        ),
    ),
    RedisUser(
        "monitor",
        "dashboard: reads the public streams and views; writes only control requests",
        reads=(
            HEARTBEATS,
            *s.ALL_STREAMS,
            "md:*",
            "account:*",
            "strategy:*",
            s.RISK_STATE,
            "notifier:*",
        ),
        # risk:state: shared/control.py sets it with the sys:control event until the
        # strategy becomes its one writer.
        owns=(*_heartbeat("monitor"), s.RISK_STATE),
        appends=(s.SYS_CONTROL, *ALERTS_AND_DLQ),
        commands=("info",),
    ),
    RedisUser(
        "notifier",
        "delivers sys:alerts to the trader's channels",
        reads=(HEARTBEATS,),
        owns=(*_heartbeat("notifier"), "notifier:*"),
        appends=ALERTS_AND_DLQ,
        consumes=(s.SYS_ALERTS,),
    ),
    RedisUser(
        "tws_simulator",
        "the simulated IB Gateway: only its heartbeat",
        reads=(HEARTBEATS,),
        owns=_heartbeat("tws_simulator"),
    ),
    RedisUser(
        OPERATOR,
        "the optbot CLI and the operator: everything, including FLUSHALL/CONFIG/ACL/DEBUG",
        admin=True,
    ),
)


def user(name: str) -> RedisUser:
    """The user ``name`` (a service name or ``operator``); KeyError names the choices."""
    for u in USERS:
        if u.name == name:
            return u
    raise KeyError(f"no Redis user {name!r}; known: {', '.join(u.name for u in USERS)}")


def password_hash(password: str) -> str:
    """The ACL file's ``#<sha256 hex>`` form: the file never holds a plaintext password."""
    return "#" + hashlib.sha256(password.encode()).hexdigest()


def _cmds(names: tuple[str, ...]) -> str:
    return " ".join(f"+{n}" for n in names)


def _keys(prefix: str, patterns: tuple[str, ...]) -> str:
    return " ".join(f"{prefix}~{p}" for p in dict.fromkeys(patterns))


def acl_line(u: RedisUser, password: str) -> str:
    """One ``user`` line: root = connection + reads; selectors for consume, own, append."""
    head = f"user {u.name} on {password_hash(password)} resetkeys resetchannels"
    if u.admin:
        return f"{head} ~* &* +@all"
    root = f"-@all {_cmds(CONNECTION + u.commands)} {_cmds(READ)}"
    readable = (*u.reads, *u.owns, *u.consumes)
    parts = [head, root, _keys("%R", readable)]
    if u.consumes:
        parts.append(f"({_cmds(CONSUME)} {_keys('', u.consumes)})")
    if u.owns:
        scripts = SCRIPTS if u.scripts else ()
        parts.append(f"({_cmds(WRITE + scripts)} {_keys('', u.owns)})")
    if u.appends:
        parts.append(f"(+xadd {_keys('%W', u.appends)})")
    return " ".join(p for p in parts if p)


def render_acl(passwords: Mapping[str, str]) -> str:
    """The whole ACL file: every user of ``USERS`` (a password each) and ``default`` off."""
    missing = [u.name for u in USERS if not passwords.get(u.name)]
    if missing:
        raise ValueError(f"no password for Redis users: {', '.join(missing)}")
    # No comments: Redis refuses an ACL file with any line that is not a user.
    lines = [acl_line(u, passwords[u.name]) for u in USERS]
    lines.append(DEFAULT_USER)
    return "\n".join(lines) + "\n"
