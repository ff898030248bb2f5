"""Trading logic reads time from shared.clock, never from the host directly.

A backtest runs the unchanged services on simulated time: a single ``time.time()`` in a
trading decision would mix host time into it. This scans the trading services' source
for direct reads of the host clock and asyncio's timers; the host-clock uses that are
right (heartbeats, leases, Redis and IB timeouts, reconnect backoff, log durations,
transport timestamps) are listed below with their reason.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from tests import source_ast

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("services/strategy", "services/market_data", "services/gateway_adapter")

# module -> attributes that read the host clock or sleep on it
FORBIDDEN = {
    "time": {"time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "sleep"},
    "asyncio": {"sleep", "wait_for", "timeout", "timeout_at"},
    "datetime": {"now", "utcnow", "today"},  # datetime.now / dt.datetime.now
    "date": {"today"},  # date.today / dt.date.today
    "aio": {"sleep_or_stop"},  # shared.aio's: asyncio's timer
}
BARE = {"sleep_or_stop"}  # names imported from shared.aio

# (file, function) -> why the host clock is right there
ALLOWED: dict[tuple[str, str], str] = {
    # strategy
    ("services/strategy/main.py", "StrategyService.start"): "sys:control start id: stream ids",
    ("services/strategy/main.py", "StrategyService.on_account"): "reconcile grace: transport",
    ("services/strategy/controls.py", "ControlHandler.apply"): "operator request expiry (CLI)",
    ("services/strategy/reconcile.py", "Reconciler.observe"): "alert opened_at for notifier",
    ("services/strategy/rebuild.py", "apply_request"): "entry age from msg.ts (host)",
    ("services/strategy/rebuild.py", "rebuild"): "log duration",
    ("services/strategy/views.py", "pnl_fields"): "view freshness for the monitor",
    # market_data
    ("services/market_data/main.py", "<module>"): "imports sleep_or_stop for retry backoff",
    ("services/market_data/main.py", "MarketDataService.request_universe"): "re-request timing",
    ("services/market_data/main.py", "MarketDataService.on_status"): "re-request timing",
    ("services/market_data/main.py", "MarketDataService._history_retry_loop"): "retry backoff",
    # gateway adapter: IB requests, reconnects, leases, publishing are transport
    ("services/gateway_adapter/account.py", "AccountReporter.run"): "publish debounce",
    ("services/gateway_adapter/chains.py", "Requests._spot"): "IB request timeout",
    ("services/gateway_adapter/chains.py", "Requests.option_chain"): "IB request timeout",
    ("services/gateway_adapter/chains.py", "Requests.history"): "IB request timeout",
    ("services/gateway_adapter/connection.py", "<module>"): "sleep_or_stop: reconnect backoff",
    ("services/gateway_adapter/connection.py", "IbConnection.run"): "reconnect backoff",
    ("services/gateway_adapter/connection.py", "IbConnection._attempt"): "IB restart window",
    ("services/gateway_adapter/connection.py", "IbConnection._sync"): "sync retry timeout",
    ("services/gateway_adapter/ib_orders.py", "IbExecutor.sync"): "IB request timeout",
    ("services/gateway_adapter/journal.py", "OrderJournal._after"): "Redis retry backoff",
    ("services/gateway_adapter/journal.py", "OrderJournal.drain"): "Redis wait timeout",
    ("services/gateway_adapter/lease.py", "*"): "the active adapter's lease",
    ("services/gateway_adapter/main.py", "GatewayAdapter._stats"): "heartbeat fields interval",
    ("services/gateway_adapter/main.py", "GatewayAdapter.on_clock_tick"): "IB request timeout",
    ("services/gateway_adapter/pacing.py", "*"): "IB message pacing: a host rate limit",
    ("services/gateway_adapter/publish.py", "*"): "quote publish linger: transport",
    ("services/gateway_adapter/qualify.py", "Qualifier._ask_ib"): "IB request timeout",
    ("services/gateway_adapter/reconcile.py", "*"): "IB request timeouts",
    ("services/gateway_adapter/sim_account.py", "*"): "fill burst linger: transport",
}


@dataclass(frozen=True)
class Use:
    path: str
    function: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line} {self.function}: {self.what}"


class _Scan(ast.NodeVisitor):
    def __init__(self, path: str) -> None:
        self.path = path
        self.scope: list[str] = []
        self.uses: list[Use] = []
        self.bare: set[str] = set()  # forbidden names imported with from-imports

    def _add(self, node: ast.AST, what: str) -> None:
        self.uses.append(Use(self.path, ".".join(self.scope) or "<module>", node.lineno, what))  # type: ignore[attr-defined]

    def _scoped(self, node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_ClassDef = _scoped
    visit_FunctionDef = _scoped
    visit_AsyncFunctionDef = _scoped

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = (node.module or "").split(".")[-1]
        for alias in node.names:
            if alias.name in FORBIDDEN.get(module, set()) or alias.name in BARE:
                self.bare.add(alias.asname or alias.name)
                self._add(node, f"from {node.module} import {alias.name}")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        base = node.value
        owner = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", None)
        if owner in FORBIDDEN and node.attr in FORBIDDEN[owner]:
            self._add(node, f"{owner}.{node.attr}")
        elif node.attr == "time" and _is_loop(base):
            self._add(node, "loop.time")
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in self.bare:
            self._add(node, node.id)


def _is_loop(node: ast.expr) -> bool:
    """``loop.time`` / ``self._loop.time`` / ``asyncio.get_running_loop().time``."""
    if isinstance(node, ast.Call):
        node = node.func
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
    return "loop" in name.lower()


def host_clock_uses(source: str, path: str) -> list[Use]:
    scan = _Scan(path)
    scan.visit(source_ast.parse(source))
    return scan.uses


def _allowed(use: Use) -> bool:
    return (use.path, use.function) in ALLOWED or (use.path, "*") in ALLOWED


def scan_tree() -> list[Use]:
    uses: list[Use] = []
    for folder in SCANNED:
        for file in sorted((ROOT / folder).glob("*.py")):
            rel = file.relative_to(ROOT).as_posix()
            uses += host_clock_uses(file.read_text(), rel)
    return uses


def test_trading_logic_reads_time_only_from_shared_clock() -> None:
    bad = [str(u) for u in scan_tree() if not _allowed(u)]
    assert not bad, "read shared.clock.current() instead (or allow with a reason):\n" + "\n".join(
        bad
    )


def test_every_allowed_host_clock_use_still_exists() -> None:
    used = {(u.path, u.function) for u in scan_tree()} | {(u.path, "*") for u in scan_tree()}
    stale = [f"{p} {f}" for p, f in ALLOWED if (p, f) not in used]
    assert not stale, "allowlist entries without a host-clock use:\n" + "\n".join(stale)


def test_checker_when_trading_code_calls_the_host_clock_finds_each_call() -> None:
    snippet = """
import asyncio, time
import datetime as dt
from datetime import date, datetime
from shared.aio import sleep_or_stop
from time import monotonic

class Cycle:
    async def tick(self, stop):
        a = time.time()
        b = dt.datetime.now(dt.UTC)
        c = datetime.utcnow()
        d = date.today()
        await asyncio.sleep(1)
        await asyncio.wait_for(stop.wait(), 5)
        e = asyncio.get_running_loop().time()
        f = self._loop.time()
        await sleep_or_stop(stop, 1)
        g = monotonic()
        h = time.perf_counter()

def default(clock=time.monotonic):
    return clock()
"""
    found = [(u.function, u.what) for u in host_clock_uses(snippet, "x.py")]
    tick = [w for f, w in found if f == "Cycle.tick"]
    assert tick == [
        "time.time",
        "datetime.now",
        "datetime.utcnow",
        "date.today",
        "asyncio.sleep",
        "asyncio.wait_for",
        "loop.time",
        "loop.time",
        "sleep_or_stop",
        "monotonic",
        "time.perf_counter",
    ]
    assert ("default", "time.monotonic") in found
    assert ("<module>", "from shared.aio import sleep_or_stop") in found


def test_checker_when_trading_code_reads_shared_clock_finds_nothing() -> None:
    snippet = """
from shared import clock

async def tick(stop):
    now = clock.current().now()
    t = clock.current().time()
    await clock.current().sleep(1)
    await clock.current().sleep_or_stop(stop, 1)
    return now.date(), t
"""
    assert host_clock_uses(snippet, "x.py") == []


def test_checker_when_a_direct_call_is_injected_into_a_scanned_file_fails() -> None:
    """The real strategy cycle with one ``time.time()`` added is caught, not allowed."""
    path = "services/strategy/cycle.py"
    source = (ROOT / path).read_text()
    injected = source.replace(
        "            self.cycles += 1\n",
        "            self.cycles += 1\n            started = time.time()\n",
        1,
    )
    assert injected != source
    bad = [u for u in host_clock_uses(injected, path) if not _allowed(u)]
    assert [(u.function, u.what) for u in bad] == [("Cycles.entry_cycle", "time.time")]
