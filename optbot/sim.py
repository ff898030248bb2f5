"""``optbot sim``: steer a running TWS simulator over its control port (simulated mode)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from optbot.console import load_or_exit

app = typer.Typer(help="Steer a running TWS simulator (simulated mode).", no_args_is_help=True)

_FAULTS = (
    "drop_all, connectivity_lost, connectivity_restored, restart, delay, malformed, regime, "
    "step, status"
)


def _parse_args(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` words into JSON values (numbers and true/false parsed)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected key=value, got {pair!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


@app.command("fault")
def sim_fault(
    command: Annotated[str, typer.Argument(help=f"One of: {_FAULTS}.")],
    args: Annotated[
        list[str] | None,
        typer.Argument(help="key=value arguments, e.g. data_maintained=false, name=trending_down."),
    ] = None,
) -> None:
    """Inject a fault into the running simulator (over its control port).

    Examples: `optbot sim fault connectivity_lost`, `optbot sim fault connectivity_restored
    data_maintained=false`, `optbot sim fault regime name=trending_down`.
    """
    from services.tws_simulator.faults import send_fault

    settings = load_or_exit()
    try:
        bound = settings.sim_control_host
        host = "127.0.0.1" if bound in ("0.0.0.0", "::") else bound
        reply = send_fault(host, settings.sim_control_port, command, **_parse_args(args or []))
    except OSError as exc:
        port = settings.sim_control_port
        typer.echo(f"optbot: simulator control port {port} unreachable: {exc}", err=True)
        raise typer.Exit(3) from exc
    typer.echo(json.dumps(reply))
    raise typer.Exit(0 if reply.get("ok") else 1)
