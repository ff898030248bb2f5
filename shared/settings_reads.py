"""Which settings each service may read: its domains, plus named cross-domain reads.

A service reads the domains that describe it (strategy: strategy and risk) and the
ones every process needs (process, redis, bus). A read of another domain's setting
couples two services through configuration, so each one is named here with its
reason; tests/test_settings_reads.py scans ``services/NAME/`` and fails on any read
not covered, and on a declared cross read that no code makes any more.
"""

from __future__ import annotations

from shared.settings import DOMAINS

EVERY_PROCESS = frozenset({"process", "redis", "bus"})

SERVICE_DOMAINS: dict[str, frozenset[str]] = {
    "gateway_adapter": EVERY_PROCESS | {"ib", "ib_restart", "gateway"},
    "market_data": EVERY_PROCESS | {"market_data", "momentum", "sentiment"},
    "monitor": EVERY_PROCESS | {"monitor", "control"},
    "notifier": EVERY_PROCESS | {"notifier", "ib_restart"},
    "strategy": EVERY_PROCESS | {"strategy", "risk", "control"},
    "tws_simulator": EVERY_PROCESS | {"sim"},
}

# (service, setting read) -> why that service reads a setting of another domain.
CROSS_READS: dict[tuple[str, str], str] = {
    ("gateway_adapter", "strat_starting_equity"): "the simulated-execution book starts at "
    "the equity the strategy assumes when the broker's NetLiquidation is unknown, so the "
    "two agree before the first account snapshot (one number, not two to keep equal)",
    ("strategy", "ib_route_orders"): "which account snapshots are the traded book: the "
    "broker's when orders go to IB, the adapter's simulated book otherwise",
    ("monitor", "md_stale_s"): "the dashboard calls a quote stale by market_data's rule",
    ("monitor", "watchlist"): "the dashboard lists the symbols market_data watches",
    ("tws_simulator", "md_market_hours"): "the simulated market keeps the hours the "
    "momentum screen runs in (always: around the clock)",
}


def member_domains() -> dict[str, str]:
    """Every name a service can read off ``Settings`` -> the domain that declares it.

    Fields, the domains' methods and properties (``maxlen``, ``watchlist``), and the
    typed accessors themselves (``settings.risk`` reads the risk domain).
    """
    owner: dict[str, str] = {}
    for key, model in DOMAINS.items():
        owner[key] = key
        owner.update(dict.fromkeys(model.model_fields, key))
        owner.update({n: key for n in vars(model) if not n.startswith("_") and n != "model_config"})
    return owner


def allowed(service: str, member: str) -> bool:
    """May ``service`` read ``member`` (a field, method or accessor of ``Settings``)?"""
    domain = member_domains()[member]
    return domain in SERVICE_DOMAINS.get(service, frozenset()) or (service, member) in CROSS_READS
