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
    "strategy": EVERY_PROCESS | {"strategy", "risk"},
    "tws_simulator": EVERY_PROCESS | {"sim"},
}

# (service, field) -> why that service reads a setting of another domain.
CROSS_READS: dict[tuple[str, str], str] = {
    ("gateway_adapter", "strat_starting_equity"): "the simulated-execution book starts at "
    "the equity the strategy assumes when the broker's NetLiquidation is unknown, so the "
    "two agree before the first account snapshot (one number, not two to keep equal)",
    ("strategy", "ib_route_orders"): "which account snapshots are the traded book: the "
    "broker's when orders go to IB, the adapter's simulated book otherwise",
    ("monitor", "md_stale_s"): "the dashboard calls a quote stale by market_data's rule",
    ("monitor", "md_watchlist"): "the dashboard lists the symbols market_data watches",
    ("strategy", "control_timeout_s"): "an operator's control older than this has expired "
    "unapplied, so the strategy starts reading sys:control no further back",
    ("tws_simulator", "md_market_hours"): "the simulated market keeps the hours the "
    "momentum screen runs in (always: around the clock)",
}


# Properties that read one field under another name: a read of one is a read of the field.
DERIVED = {"watchlist": "md_watchlist", "index_symbols": "gw_index_symbols"}


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
    field = DERIVED.get(member, member)
    return domain in SERVICE_DOMAINS.get(service, frozenset()) or (service, field) in CROSS_READS


def services_reading(field: str) -> tuple[str, ...]:
    """The services that read ``field`` beyond what every process reads (their READMEs list it).

    Settings of ``EVERY_PROCESS`` domains are shared: only docs/configuration.md lists them.
    """
    domain = member_domains()[field]
    return tuple(
        service
        for service, domains in SERVICE_DOMAINS.items()
        if domain in domains - EVERY_PROCESS or (service, field) in CROSS_READS
    )
