"""Which services exist and how to start them, by import path only.

``shared`` must not import a service, so the list names modules as strings; a
service whose module is not there yet is simply absent from ``optbot up``.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any

from shared.settings import Mode, Settings


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str
    doc: str
    simulated_only: bool = False

    def available(self) -> bool:
        try:
            return importlib.util.find_spec(self.module) is not None
        except ModuleNotFoundError:
            return False

    def load(self) -> Any:
        """The service's ``main(ctx)`` coroutine function."""
        return importlib.import_module(self.module).main


# Start order matters: the simulator before the adapter, the adapter before readers.
SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        "tws_simulator",
        "services.tws_simulator.service",
        "IB Gateway stand-in (TWS API wire protocol)",
        simulated_only=True,
    ),
    ServiceSpec("gateway_adapter", "services.gateway_adapter.main", "the single IB client"),
    ServiceSpec("market_data", "services.market_data.main", "bars, sentiment, momentum"),
    ServiceSpec("strategy", "services.strategy.main", "trading cycles, risk, ledger"),
    ServiceSpec("monitor", "services.monitor.main", "dashboard, REST API, metrics"),
    ServiceSpec("notifier", "services.notifier.main", "alerts to the trader's channels"),
)


def by_name(name: str) -> ServiceSpec | None:
    return next((s for s in SERVICES if s.name == name), None)


def services_for(settings: Settings) -> list[ServiceSpec]:
    """The services ``optbot up`` starts in this mode, in start order."""
    return [
        s
        for s in SERVICES
        if s.available() and (settings.mode is Mode.SIMULATED or not s.simulated_only)
    ]
