"""Simulator settings: one frozen dataclass so a run is reproducible from its config."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything that shapes a simulator run.

    ``tick_interval`` 0 means the market only moves when ``Simulator.step()``
    is called, which is what determinism tests use.
    """

    host: str = "127.0.0.1"
    port: int = 4102
    control_port: int | None = None  # None: no control channel; 0: ephemeral port
    control_host: str = "127.0.0.1"  # unauthenticated: loopback unless asked otherwise
    seed: int = 42
    tick_interval: float = 0.25  # seconds between market steps (0 = manual stepping)
    time_scale: float = 1.0  # simulated seconds per real second
    account_id: str = "DU1234567"
    net_liquidation: float = 3756.96
    pacing_limit: int = 50  # inbound messages/second before error 100 (0 disables)
    market_data_lines: int = 100  # concurrent streaming lines before error 101
    unsubscribed_symbols: frozenset[str] = field(default_factory=frozenset)  # error 354
    delayed_only_symbols: frozenset[str] = field(default_factory=frozenset)  # error 10167
    # "always": a 24/7 market (the demo); "regular": closed outside NYSE sessions, with
    # an overnight gap at the open (options keep decaying: one calendar clock).
    market_hours: str = "always"
    regime_period: float = 1800.0  # simulated seconds between random regime draws (0: pinned)
    # "off": no schedule (regime_period applies); "demo" or "regime:seconds,...": see schedule.py
    schedule: str = "off"
    initial_regime: str = "choppy"
    flood_ticks_per_sec: int = 0  # >0: benchmark mode, N tick messages/s over all lines
    # >0: pace market steps so all open lines together send about N quotes/s (a step
    # moves every line); tick_interval is then the fastest pace. For fixed-rate loads.
    quotes_per_sec: float = 0.0
    first_order_id: int = 1
    restart_downtime: float = 0.3  # seconds the listener stays down on a restart fault
    write_buffer_limit: int = 8 << 20  # ticks are skipped while a slow client lags this much
    # Lockstep (simulated sessions, issue #19): no clock of its own; time moves only by
    # ``Simulator.advance_to`` (control command ``advance``), in steps of this length.
    lockstep: bool = False
    lockstep_step_seconds: float = 5.0
    # "YYYY-MM-DD": start at that NYSE session's open (09:30 New York); "": now.
    start: str = ""

    @property
    def step_seconds(self) -> float:
        """Simulated seconds covered by one market step."""
        if self.lockstep:
            return self.lockstep_step_seconds
        return (self.tick_interval or 1.0) * self.time_scale
