"""Clock-skew hook for fault tests: shifts this process's wall clock.

A test puts this directory first on ``PYTHONPATH`` and sets ``FAULT_CLOCK_OFFSET_S``;
Python imports ``sitecustomize`` at start-up, before any service code, so
``time.time()`` / ``time.time_ns()`` (and everything built on them: envelope ``ts``,
heartbeats, logs) run that many seconds off. ``time.monotonic()`` is untouched, as on
a host whose wall clock is wrong.
"""

import os
import time

_offset = float(os.environ.get("FAULT_CLOCK_OFFSET_S", "0") or 0)
if _offset:
    _time, _time_ns = time.time, time.time_ns
    _offset_ns = int(_offset * 1e9)
    time.time = lambda: _time() + _offset  # type: ignore[assignment]
    time.time_ns = lambda: _time_ns() + _offset_ns  # type: ignore[assignment]
