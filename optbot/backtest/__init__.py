"""Simulated sessions: the services against the simulator in lockstep, and the report.

``optbot backtest`` (``cli.py``, ``run.py``) runs the unchanged services over NYSE
sessions with the simulator in lockstep (``driver.py``): the simulator advances only
when every service has consumed what it sent, so a run depends on its seed and
settings, not on the machine's speed. ``record.py``/``report.py`` write the report.
"""
