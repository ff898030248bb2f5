"""Dashboard: the monitor's REST API and SSE under load, while quotes flood.

The system runs (simulator at about 2,000 quotes/s, adapter, market_data, monitor as
subprocesses), all on 127.0.0.1. Then, on the same monitor in the same run:

- HTTP: ``CLIENTS`` concurrent httpx clients loop on one endpoint for ``HTTP_S``
  seconds; ``/healthz`` (a trivial endpoint of the same FastAPI app, the baseline)
  and ``/api/status`` (the page header: services, gateway, risk: several Redis reads)
  alternate for ``ROUNDS`` rounds, best round of each kept. ``ratio`` = status
  requests/s / healthz requests/s; p50/p99 per request are reported with each.
  The load generator shares the machine's 2 cores with the monitor, so the absolute
  rates are lower bounds; the ratio is the figure.
- SSE: ``SSE_CLIENTS`` clients on ``/api/events`` for ``SSE_S`` seconds: events
  delivered per second (all clients), and the monitor's CPU (from /proc) with those
  clients vs with none over the same flood (``sse.cpu_ratio``).

    .venv/bin/python -m bench dashboard
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import psutil

from bench.common import progress
from bench.e2e_latency import percentiles
from bench.system import start_system

CLIENTS = 16
HTTP_S = 5.0
ROUNDS = 2
SSE_CLIENTS = 20
SSE_S = 10.0
TICK_INTERVAL = 0.01


async def _http_load(base: str, path: str, clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` concurrent loops of GET ``path``: requests/s and latency."""
    latencies: list[int] = []
    errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10) as http:
        end = time.monotonic() + seconds

        async def loop() -> None:
            nonlocal errors
            while time.monotonic() < end:
                t = time.perf_counter_ns()
                r = await http.get(path)
                latencies.append(time.perf_counter_ns() - t)
                if r.status_code != 200:
                    errors += 1

        started = time.monotonic()
        await asyncio.gather(*(loop() for _ in range(clients)))
        elapsed = time.monotonic() - started
    return {"rps": len(latencies) / elapsed, "errors": errors, **percentiles(latencies)}


async def _sse(base: str, clients: int, seconds: float) -> int:
    """Events received by ``clients`` SSE connections within ``seconds``."""
    received = 0
    async with httpx.AsyncClient(base_url=base, timeout=None) as http:

        async def one() -> None:
            nonlocal received
            async with http.stream("GET", "/api/events") as r:
                async for line in r.aiter_lines():
                    if line.startswith("event:"):
                        received += 1

        tasks = [asyncio.create_task(one()) for _ in range(clients)]
        await asyncio.sleep(seconds)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return received


def _cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


async def _cpu_pct_during(proc: psutil.Process, work: Any) -> tuple[Any, float]:
    c0, t0 = _cpu_seconds(proc), time.monotonic()
    out = await work
    return out, 100.0 * (_cpu_seconds(proc) - c0) / (time.monotonic() - t0)


async def run(url: str) -> dict[str, Any]:
    progress("dashboard: starting simulator, adapter, market_data, monitor")
    system = await start_system(
        url,
        tick_interval=TICK_INTERVAL,
        services=("gateway_adapter", "market_data", "monitor"),
    )
    base = f"http://127.0.0.1:{system.monitor_port}"
    monitor = psutil.Process(system.pids()["monitor"])
    try:
        await asyncio.sleep(3.0)  # quotes flowing, panels filled
        best: dict[str, dict[str, Any]] = {}
        for r in range(ROUNDS):
            for path in ("/healthz", "/api/status"):
                progress(f"dashboard: round {r + 1}/{ROUNDS}, {CLIENTS} clients on {path}")
                res = await _http_load(base, path, CLIENTS, HTTP_S)
                if path not in best or res["rps"] > best[path]["rps"]:
                    best[path] = res
        progress(f"dashboard: monitor CPU with no SSE client, {SSE_S:.0f} s")
        _, cpu_idle = await _cpu_pct_during(monitor, asyncio.sleep(SSE_S))
        progress(f"dashboard: {SSE_CLIENTS} SSE clients, {SSE_S:.0f} s")
        events, cpu_sse = await _cpu_pct_during(monitor, _sse(base, SSE_CLIENTS, SSE_S))
        dead = [n for n, ok in system.alive().items() if not ok]
    finally:
        await system.stop()
    status, health = best["/api/status"], best["/healthz"]
    return {
        "ours": round(status["rps"], 1),
        "baseline": round(health["rps"], 1),
        "unit": f"req/s /api/status vs /healthz, {CLIENTS} clients",
        "ratio": round(status["rps"] / health["rps"], 3) if health["rps"] else None,
        "goal": "report (issue 9: p99 and req/s vs hello-world)",
        "status": {k: v for k, v in status.items() if k != "rps"},
        "healthz": {k: v for k, v in health.items() if k != "rps"},
        "sse": {
            "clients": SSE_CLIENTS,
            "events_per_s": round(events / SSE_S, 1),
            "events_per_s_per_client": round(events / SSE_S / SSE_CLIENTS, 2),
            "monitor_cpu_pct": round(cpu_sse, 1),
            "monitor_cpu_pct_no_clients": round(cpu_idle, 1),
            "cpu_ratio": round(cpu_sse / cpu_idle, 2) if cpu_idle else None,
        },
        "services_died": dead,
    }
