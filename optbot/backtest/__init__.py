"""``optbot backtest``: the unchanged services against the simulator over NYSE sessions.

The driver (``driver.py``) runs the simulator and the services in lockstep over a
private Redis: the simulator advances only when every service has consumed what it
sent, so a run depends on its seed and settings, not on the machine's speed.
"""
