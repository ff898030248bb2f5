"""Who may touch what in Redis: one ACL user per service, and the operator.

Redis is the control plane: whoever can ``XADD orders:requests`` trades. So each
service connects as its own user allowed only the commands and keys it uses, and
the default user is off. Each user's keys are generated from the bus contract
(``shared/contract``): what it owns, sends to, reads and consumes there, and nothing
else. ``render_acl`` turns the users into a Redis 7 ACL file (``optbot acl``);
passwords appear only as ``#<sha256>`` hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from shared import contract as c
from shared.contract import OPERATOR, Entry, Kind

__all__ = ["ADMIN", "OPERATOR", "USERS", "RedisUser", "acl_line", "render_acl", "user"]

# Every user: connection housekeeping, transactions, the heartbeat/health SCAN.
CONNECTION = (
    "ping", "echo", "hello", "select", "client|setname", "client|getname", "client|id",
    "multi", "exec", "discard", "scan", "wait",
)  # fmt: skip
# WAIT: behind Sentinel, order-path writes wait for a replica (shared/bus/replicas.py).
# Not CLIENT SETINFO: Redis 7.0 does not know it (an ACL file naming it fails to load),
# and redis-py ignores its refusal.
# Read commands, on the keys a user may read (``%R~``).
READ = (
    "exists", "type", "ttl", "pttl", "get", "hget", "hmget", "hgetall", "hexists", "hlen",
    "hkeys", "lrange", "llen", "lindex", "xlen", "xrange", "xrevrange", "xread", "xinfo|stream",
    "xinfo|groups", "xinfo|consumers", "xpending", "watch", "unwatch",
)  # fmt: skip
# A consumer group needs read-write access to the streams it reads (XREADGROUP moves
# entries into the group's pending list), but only these commands: no XADD there.
CONSUME = (
    "xreadgroup", "xack", "xautoclaim", "xclaim", "xgroup|create", "xgroup|createconsumer",
)  # fmt: skip
# Data writes, on the keys a user owns (it is their one writer).
WRITE = (
    "xadd", "xtrim", "xdel", "set", "del", "unlink", "expire", "pexpire", "persist", "hset",
    "hsetnx", "hdel", "hincrby", "hincrbyfloat", "rpush", "lpop", "ltrim",
)  # fmt: skip
# Lua runs with the caller's key permissions. SCRIPT EXISTS: a pipeline that carries a
# script checks for it first (the journal's write + WAIT behind Sentinel).
SCRIPTS = ("eval", "evalsha", "script|load", "script|exists")
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


WHY: dict[str, str] = {
    c.GATEWAY: "the sole IB client: quotes, gateway status and replies, order events, account",
    c.MARKET_DATA: "bars, sentiment, momentum candidates; asks the adapter for lines and history",
    c.STRATEGY: "trading cycles, risk state, ledger views; the one sender of orders",
    c.MONITOR: "dashboard: reads the public streams and views; writes only control requests",
    c.NOTIFIER: "delivers sys:alerts to the trader's channels",
    c.SIMULATOR: "the simulated IB Gateway: only its heartbeat",
}
KEYLESS: dict[str, tuple[str, ...]] = {c.MONITOR: ("info",)}  # the dashboard's Redis panel


def _patterns(entries: Iterable[Entry]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(e.pattern for e in entries))


def user_from_contract(name: str, entries: tuple[Entry, ...] = c.ENTRIES) -> RedisUser:
    """``name``'s rights, from the entries that name it (owner, senders, readers, consumers).

    The owner of a fact writes it (every data write); a sender of a stream may only XADD
    to it (an inbox, or a tolerated second writer); a sender of another key writes it.
    """
    owned = [e for e in entries if e.owner == name and not e.inbox]
    owned += [e for e in entries if name in e.senders and e.kind is not Kind.STREAM]
    appended = [e for e in entries if name in e.senders and e.kind is Kind.STREAM]
    return RedisUser(
        name,
        WHY[name],
        reads=_patterns(e for e in entries if name in e.readers),
        owns=_patterns(owned),
        appends=_patterns(appended),
        consumes=_patterns(e for e in entries if name in e.consumers),
        scripts=any(e.scripts for e in owned),
        commands=KEYLESS.get(name, ()),
    )


USERS: tuple[RedisUser, ...] = (
    *(user_from_contract(name) for name in c.SERVICES if name != c.SIMULATOR),
    user_from_contract(c.SIMULATOR),
    RedisUser(
        OPERATOR,
        "the optbot CLI and the operator: everything, including FLUSHALL/CONFIG/ACL/DEBUG",
        admin=True,
    ),
)


# The one key the operator may read but not write: the strategy applies its requests.
ADMIN_READ_ONLY = c.RISK_STATE


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


def all_keys_but(key: str) -> tuple[str, ...]:
    """Glob patterns matching every key except ``key`` (ACL key patterns only allow).

    A key differs from ``key`` at some first position, is a proper prefix of it, or
    is longer with ``key`` as its prefix: one pattern per case and position.
    """
    out: list[str] = []
    for i, ch in enumerate(key):
        head = _glob_escape(key[:i])
        out.append(f"{head}[^{_glob_escape(ch)}]*")
        if i:
            out.append(head)  # the proper prefix itself, as a whole key
    out.append(f"{_glob_escape(key)}?*")
    return tuple(out)


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
        # Read every key (%R~*), read and write every key but ADMIN_READ_ONLY (~...):
        # Redis 7.0 wants one pattern granting all a command needs on a key, so a
        # read-and-write (LPOP, BLPOP, GETDEL) under %R~* plus %W~... would be refused.
        writable = _keys("", all_keys_but(ADMIN_READ_ONLY))
        return f"{head} %R~* {writable} &* +@all"
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
