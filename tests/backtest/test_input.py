"""Bad input to ``optbot backtest``: a clear error naming the problem, exit 2, nothing started."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from optbot.backtest.options import BadInput, plan
from optbot.backtest.sessions import sessions
from optbot.cli import app


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["backtest", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--days", "0"], "--days must be at least 1, got 0"),
        (["--days", "1", "--regimes", "trending_up,sideways"], "unknown regime 'sideways'"),
        (["--days", "1", "--start", "2025-12-25"], "2025-12-25 is not an NYSE session"),
        (["--days", "1", "--start", "2025-12-27"], "(a weekend day)"),
        (["--days", "1", "--start", "25-12-2025"], "is not a date (YYYY-MM-DD)"),
        (["--days", "1", "--watchlist", "SPY,qq!"], "--watchlist='SPY,qq!': expected"),
        (["--days", "1", "--minutes", "0"], "--minutes must be positive"),
        (["--days", "1", "--step", "30"], "--step 30 is longer than OPTBOT_RISK_MAX_QUOTE_AGE_S"),
    ],
)
def test_bad_input_exits_2_naming_it_and_creates_nothing(
    tmp_path: Path, args: list[str], says: str
) -> None:
    out = tmp_path / "report"
    code, output = _run(*args, "--out", str(out))
    assert code == 2, output
    assert says in output
    assert not out.exists()  # checked before anything is created or started


def test_an_unwritable_out_is_named(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: permissions are not enforced")
        code, output = _run("--days", "1", "--start", "2025-03-03", "--out", str(locked / "r"))
        assert code == 2
        assert f"--out {locked / 'r'} is not writable" in output
    finally:
        locked.chmod(0o700)


def test_an_out_that_cannot_be_created_is_named(tmp_path: Path) -> None:
    """Root-proof: a directory under a regular file can never be created."""
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "report"
    code, output = _run("--days", "1", "--start", "2025-03-03", "--out", str(out))
    assert code == 2 and f"--out {out} is not writable: Not a directory" in output


def test_an_out_that_is_a_file_is_named(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    code, output = _run("--days", "1", "--start", "2025-03-03", "--out", str(target))
    assert code == 2 and "exists and is not a directory" in output


def test_the_installed_command_exits_2(tmp_path: Path) -> None:
    """The real entry point, as a user runs it (no CliRunner in between)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "optbot.cli",
            "backtest",
            "--days",
            "0",
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "--days must be at least 1" in proc.stderr


def test_a_plan_cycles_regimes_over_the_sessions(tmp_path: Path) -> None:
    checked = plan(days=4, out=tmp_path / "o", start="2025-03-03", regimes="trending_up,choppy")
    assert [s.day for s in checked.sessions] == [
        dt.date(2025, 3, 3), dt.date(2025, 3, 4), dt.date(2025, 3, 5), dt.date(2025, 3, 6)
    ]  # fmt: skip
    assert [r.value for r in checked.regimes] == ["trending_up", "choppy"] * 2
    with pytest.raises(BadInput, match="--regimes is empty"):
        plan(days=1, out=tmp_path / "o", regimes=" , ")


def test_sessions_skip_holidays_and_know_early_closes() -> None:
    found = sessions(dt.date(2025, 11, 26), 3)
    # Thanksgiving (27th) is skipped; the 28th closes at 13:00 New York (18:00 UTC).
    assert [s.day.isoformat() for s in found] == ["2025-11-26", "2025-11-28", "2025-12-01"]
    assert found[0].hours == 6.5 and found[1].hours == 3.5
    assert dt.datetime.fromtimestamp(found[1].close, dt.UTC).hour == 18
    assert dt.datetime.fromtimestamp(found[0].open, dt.UTC).strftime("%H:%M") == "14:30"


def test_the_default_start_is_the_last_closed_sessions() -> None:
    now = dt.datetime(2025, 3, 5, 15, 0, tzinfo=dt.UTC).timestamp()  # 10:00 New York, open
    found = sessions(None, 2, now=now)
    assert [s.day.isoformat() for s in found] == ["2025-03-03", "2025-03-04"]
