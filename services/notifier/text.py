"""How alerts read on a phone: short titles, durations a human says aloud."""

from __future__ import annotations

from shared.schemas import Alert, AlertSeverity, AlertState

_TAG = {
    AlertSeverity.CRITICAL: "CRITICAL",
    AlertSeverity.WARNING: "WARNING",
    AlertSeverity.INFO: "INFO",
}


def duration(seconds: float) -> str:
    """``3 m 12 s``, ``2 h 5 m``, ``40 s``: what "after ..." says in a recovery."""
    s = max(0, round(seconds))
    hours, rest = divmod(s, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} m"
    if minutes:
        return f"{minutes} m {secs} s"
    return f"{secs} s"


def title(alert: Alert, *, repeat: bool = False) -> str:
    """``[CRITICAL] gateway`` / ``[RECOVERED] gateway`` / ``[STILL OPEN] gateway``."""
    if alert.state is AlertState.CLOSED:
        tag = "RECOVERED"
    elif repeat:
        tag = f"STILL OPEN {_TAG[alert.severity]}"
    else:
        tag = _TAG[alert.severity]
    return f"optbot [{tag}] {alert.alert_key}"


def body(alert: Alert, *, now: float, repeat: bool = False) -> str:
    """The message, then the details one per line, then how long it has lasted."""
    lines = [alert.message]
    lines += [f"{k}: {v}" for k, v in sorted(alert.details.items())]
    if repeat and alert.opened_at:
        lines.append(f"open for {duration(now - alert.opened_at)}")
    closed = alert.state is AlertState.CLOSED
    if closed and alert.opened_at and " after " not in alert.message:
        lines.append(f"after {duration(now - alert.opened_at)}")
    if alert.source:
        lines.append(f"source: {alert.source}")
    return "\n".join(lines)


def notify_type(alert: Alert) -> str:
    """Apprise's notify type (colour/icon on the channel)."""
    if alert.state is AlertState.CLOSED:
        return "success"
    return {"critical": "failure", "warning": "warning"}.get(alert.severity.value, "info")
