"""Entry point the CLI wires up: run a simulator until asked to stop."""

from __future__ import annotations

import asyncio
import logging

from .config import SimConfig
from .server import Simulator

log = logging.getLogger("optbot.tws_simulator")


async def serve(config: SimConfig, stop: asyncio.Event) -> None:
    """Run the simulator until ``stop`` is set, then close every connection."""
    sim = Simulator(config)
    await sim.start()
    try:
        await stop.wait()
    finally:
        await sim.stop()
