"""`make bench`: run every benchmark, print a table, write bench/results.json.

Figures are ratios against a baseline measured in the same run on the same Redis,
so a busy or slow machine moves both sides. Benchmarks never fail the build.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys
import time
from typing import Any

from bench.common import RESULTS, commit, machine, private_redis, progress

# name -> module; each module has `async def run(redis_url) -> dict`.
BENCHMARKS = {
    "bus_publish": "bench.bus_publish",
    "bus_consume": "bench.bus_consume",
    "faststream_peer": "bench.faststream_peer",
    "adapter_ingest": "bench.adapter_ingest",
    "e2e_latency": "bench.e2e_latency",
    "soak": "bench.soak",
    "dashboard": "bench.dashboard",
    "replica_wait": "bench.replica_wait",
    "backtest": "bench.backtest",
}


def _available(names: list[str]) -> list[str]:
    out = []
    for name in names:
        try:
            importlib.import_module(BENCHMARKS[name])
            out.append(name)
        except ModuleNotFoundError:
            progress(f"{name}: not built yet, skipped")
    return out


def _row(name: str, r: dict[str, Any]) -> str:
    if "error" in r:
        return f"{name:<16} ERROR {r['error']}"
    if "p50_ms" in r:
        return (
            f"{name:<16} p50 {r['p50_ms']:>8.2f} ms  p99 {r['p99_ms']:>8.2f} ms  "
            f"max {r['max_ms']:>8.2f} ms  ratio {r.get('ratio')}"
        )
    return (
        f"{name:<16} ours {r['ours']:>12,.1f}  baseline {r['baseline']:>12,.1f}  "
        f"{r['unit']:<24} ratio {r['ratio']}  (goal {r.get('goal', '-')})"
    )


async def _run(names: list[str]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with private_redis() as redis:
        for name in names:
            progress(f"{name}: starting")
            started = time.monotonic()
            module = importlib.import_module(BENCHMARKS[name])
            try:
                results[name] = await module.run(redis.url)
            except Exception as exc:  # a broken benchmark is reported, the others still run
                results[name] = {"error": f"{type(exc).__name__}: {exc}"}
            results[name]["seconds"] = round(time.monotonic() - started, 1)
            print(_row(name, results[name]), flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", choices=[*BENCHMARKS, []], help="benchmarks to run")
    parser.add_argument("--no-write", action="store_true", help="do not update results.json")
    args = parser.parse_args(argv)
    names = _available(args.names or list(BENCHMARKS))
    results = asyncio.run(_run(names))
    if not args.no_write:
        previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        merged = {**previous.get("benchmarks", {}), **results}
        RESULTS.write_text(
            json.dumps({"machine": machine(), "commit": commit(), "benchmarks": merged}, indent=2)
            + "\n"
        )
        print(f"wrote {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
