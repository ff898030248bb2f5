"""How messages read: durations and the recovery line."""

from __future__ import annotations

from services.notifier.text import body, duration, title
from shared.schemas import Alert, AlertSeverity, AlertState


def test_duration_when_formatted_reads_like_a_human_says_it() -> None:
    assert [duration(s) for s in (0, 40, 192, 3600 * 2 + 300)] == [
        "0 s",
        "40 s",
        "3 m 12 s",
        "2 h 5 m",
    ]


def test_recovery_when_message_lacks_a_duration_adds_how_long_it_lasted() -> None:
    closed = Alert(code="reconcile", severity=AlertSeverity.INFO, key="reconcile",
                   message="ledger and broker account agree again", state=AlertState.CLOSED,
                   opened_at=1000.0)  # fmt: skip
    assert title(closed) == "optbot [RECOVERED] reconcile"
    assert body(closed, now=1192.0).splitlines() == [
        "ledger and broker account agree again", "after 3 m 12 s",
    ]  # fmt: skip
