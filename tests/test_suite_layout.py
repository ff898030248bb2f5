"""The test suite's own layout: what `make test` runs on its system worker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import SYSTEM_TESTS, is_system_test

ROOT = Path(__file__).parent.parent


def test_every_slow_test_when_collected_runs_on_the_system_worker() -> None:
    """A test marked ``slow`` spawns processes or runs long: two of those at once on two
    cores would starve each other, so each must be in conftest's SYSTEM_TESTS."""
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "slow",
         "-p", "no:cacheprovider", "tests"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    slow = [line for line in out.splitlines() if "::" in line]
    assert len(slow) > 20, out[-2000:]  # the fault suite alone has more
    loose = [nodeid for nodeid in slow if not is_system_test(nodeid)]
    assert loose == [], f"add their modules to SYSTEM_TESTS in tests/conftest.py: {loose}"


def test_system_paths_when_listed_each_name_an_existing_test_file_or_dir() -> None:
    assert [p for p in SYSTEM_TESTS if not (ROOT / p).exists()] == []
