"""Which services make up the system, in start order, and which run only when simulated.

Names only: the monitor and the notifier expect a heartbeat from each, and the operator
tooling (``optbot.registry``) maps each name to the module it starts.
"""

from __future__ import annotations

from typing import Final

from shared.contract import GATEWAY, MARKET_DATA, MONITOR, NOTIFIER, SIMULATOR, STRATEGY
from shared.settings import Mode, Settings

# Start order matters: the simulator before the adapter, the adapter before readers.
START_ORDER: Final = (SIMULATOR, GATEWAY, MARKET_DATA, STRATEGY, MONITOR, NOTIFIER)
SIMULATED_ONLY: Final = frozenset({SIMULATOR})


def expected_services(settings: Settings) -> list[str]:
    """The services that run in this mode, in start order."""
    return [n for n in START_ORDER if settings.mode is Mode.SIMULATED or n not in SIMULATED_ONLY]
