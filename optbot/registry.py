"""Which module runs each service, by import path only.

The list names modules as strings so that ``optbot --help`` loads no service; a
service whose module is not there yet is simply absent from ``optbot up``. Which
services exist, their start order and mode come from ``shared.roster``.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any

from shared.contract import GATEWAY, MARKET_DATA, MONITOR, NOTIFIER, SIMULATOR, STRATEGY
from shared.roster import START_ORDER, expected_services
from shared.settings import Settings


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str
    doc: str

    def available(self) -> bool:
        try:
            return importlib.util.find_spec(self.module) is not None
        except ModuleNotFoundError:
            return False

    def load(self) -> Any:
        """The service's ``main(ctx)`` coroutine function."""
        return importlib.import_module(self.module).main


_MODULES: dict[str, tuple[str, str]] = {
    SIMULATOR: ("services.tws_simulator.service", "IB Gateway stand-in (TWS API wire protocol)"),
    GATEWAY: ("services.gateway_adapter.main", "the single IB client"),
    MARKET_DATA: ("services.market_data.main", "bars, sentiment, momentum"),
    STRATEGY: ("services.strategy.main", "trading cycles, risk, ledger"),
    MONITOR: ("services.monitor.main", "dashboard, REST API, metrics"),
    NOTIFIER: ("services.notifier.main", "alerts to the trader's channels"),
}

# In start order (the roster's): the simulator before the adapter, the adapter before readers.
SERVICES: tuple[ServiceSpec, ...] = tuple(ServiceSpec(n, *_MODULES[n]) for n in START_ORDER)


def by_name(name: str) -> ServiceSpec | None:
    return next((s for s in SERVICES if s.name == name), None)


def services_for(settings: Settings) -> list[ServiceSpec]:
    """The services ``optbot up`` starts in this mode, in start order."""
    specs = (by_name(n) for n in expected_services(settings))
    return [s for s in specs if s is not None and s.available()]
