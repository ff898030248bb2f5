"""The simulator as an optbot service: settings in, heartbeat and logs out.

``optbot up`` runs it in simulated mode, before the gateway adapter, which
connects to it on ``OPTBOT_SIM_PORT`` (default 4102: none of IB's own ports).
"""

from __future__ import annotations

from services.tws_simulator.config import SimConfig
from services.tws_simulator.nyse import NotASession
from services.tws_simulator.server import Simulator
from shared.aio import sleep_or_stop
from shared.runner import ServiceContext
from shared.settings import ConfigError, MarketHours, Settings


def config_from(settings: Settings) -> SimConfig:
    return SimConfig(
        host=settings.sim_host,
        port=settings.sim_port,
        control_port=settings.sim_control_port,
        control_host=settings.sim_control_host,
        seed=settings.sim_seed,
        tick_interval=settings.sim_tick_interval_s,
        time_scale=settings.sim_time_scale,
        initial_regime=settings.sim_regime.value,
        schedule=settings.sim_schedule,
        regime_period=0,  # the schedule (or, with "off", the pinned regime) decides
        # one knob: the simulator keeps the hours market_data screens (extended = regular)
        market_hours="always" if settings.md_market_hours is MarketHours.ALWAYS else "regular",
        account_id=settings.sim_account,
        net_liquidation=settings.sim_net_liquidation,
        lockstep=settings.sim_lockstep,
        lockstep_step_seconds=settings.sim_step_seconds,
        start=settings.sim_start,
    )


async def _report(ctx: ServiceContext, sim: Simulator) -> None:
    """Keep the heartbeat telling who is connected and where the market is."""
    while not ctx.stop.is_set():
        status = sim.status()
        ctx.extra.update(
            port=str(sim.port),
            control_port=str(sim.control_port or ""),
            clients=",".join(str(c) for c in status.get("clients", []) or []),  # type: ignore[attr-defined]
            regime=str(status.get("regime", "")),
        )
        await sleep_or_stop(ctx.stop, ctx.settings.heartbeat_interval_s)


async def main(ctx: ServiceContext) -> None:
    """Entry point for ``optbot run tws_simulator``."""
    try:
        sim = Simulator(config_from(ctx.settings))
    except NotASession as e:
        raise ConfigError(f"OPTBOT_SIM_START={ctx.settings.sim_start!r}: {e}") from e
    await sim.start()
    ctx.spawn(_report(ctx, sim), "report")

    async def _stop_with_service() -> None:
        await ctx.stop.wait()
        await sim.stop()

    ctx.spawn(_stop_with_service(), "simulator")
