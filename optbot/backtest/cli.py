"""The ``optbot backtest`` command: check the input, run the driver, print where the report is.

Exit codes: 0 a complete run with no invariant violated, 1 a run that failed or broke an
invariant, 2 bad input (nothing started), 130 stopped by Ctrl-C (partial report written).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

BAD_INPUT_EXIT = 2
INTERRUPTED_EXIT = 130


def backtest(
    days: Annotated[int, typer.Option("--days", help="NYSE sessions to run (1 or more).")],
    out: Annotated[
        Path, typer.Option("--out", help="Report directory (created; must be writable).")
    ],
    start: Annotated[
        str | None,
        typer.Option(
            "--start",
            help="First session, YYYY-MM-DD (an NYSE session; default: the last N sessions).",
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed of the simulated market (OPTBOT_SIM_SEED).")
    ] = None,
    regimes: Annotated[
        str | None,
        typer.Option(
            "--regimes",
            help="Comma-separated regimes, one per session, cycled "
            "(trending_up, trending_down, choppy; default: all three in turn).",
        ),
    ] = None,
    watchlist: Annotated[
        str | None,
        typer.Option("--watchlist", help="Symbols, comma separated (OPTBOT_MD_WATCHLIST)."),
    ] = None,
    monitor: Annotated[
        bool, typer.Option("--monitor", help="Also run the dashboard to watch the run live.")
    ] = False,
    minutes: Annotated[
        float | None,
        typer.Option("--minutes", help="Run only the first M minutes of each session."),
    ] = None,
    step: Annotated[
        float | None,
        typer.Option("--step", help="Simulated seconds per lockstep step (default 5)."),
    ] = None,
) -> None:
    """Run the services against the simulator over N NYSE sessions, as fast as they keep up.

    Writes summary.json, trades.csv, decisions.csv and report.html to --out. Any OPTBOT_
    setting in the environment applies to the services, as with `optbot up`.
    """
    from optbot.backtest.options import BadInput, plan

    try:
        checked = plan(
            days=days,
            out=out,
            start=start,
            seed=seed,
            regimes=regimes,
            watchlist=watchlist,
            monitor=monitor,
            minutes=minutes,
            step_s=step,
        )
    except BadInput as exc:
        typer.echo(f"optbot backtest: {exc}", err=True)
        raise typer.Exit(BAD_INPUT_EXIT) from None
    from optbot.backtest.run import run_backtest

    raise typer.Exit(run_backtest(checked))
