"""Notifier keys: its own delivery state, so a restart sends nothing twice."""

from __future__ import annotations

from typing import Final

from shared.contract.spec import MONITOR, NOTIFIER, Entry, Kind

NOTIFIER_CHANNELS: Final = "notifier:channels"
NOTIFIER_OPEN: Final = "notifier:open"
NOTIFIER_WATCH: Final = "notifier:watch"
NOTIFIER_SUMMARY: Final = "notifier:summary"
NOTIFIER_OUTBOX: Final = "notifier:outbox:{channel}"
NOTIFIER_DELIVERY: Final = "notifier:delivery:{entry_id}"
NOTIFIER_SEEN: Final = "notifier:seen:{marker}"


def notifier_outbox_key(channel: str) -> str:
    """List of messages waiting for ``channel`` (oldest first)."""
    return NOTIFIER_OUTBOX.format(channel=channel)


def notifier_delivery_key(entry_id: str) -> str:
    """Hash of one sys:alerts entry's delivery per channel (sent / queued / failed)."""
    return NOTIFIER_DELIVERY.format(entry_id=entry_id)


def notifier_seen_key(marker: str) -> str:
    """Dedup marker (SET NX with a TTL): this alert was already queued."""
    return NOTIFIER_SEEN.format(marker=marker)


ENTRIES: Final = (
    Entry(NOTIFIER_CHANNELS, Kind.HASH, NOTIFIER, "channel id -> JSON health",
          readers=(MONITOR,)),
    Entry(NOTIFIER_OPEN, Kind.HASH, NOTIFIER, "alert key -> JSON of the open condition",
          readers=(MONITOR,)),
    Entry(NOTIFIER_WATCH, Kind.HASH, NOTIFIER, "the watcher's conditions (key -> JSON)",
          readers=(MONITOR,)),
    Entry(NOTIFIER_SUMMARY, Kind.STRING, NOTIFIER, "NY date of the last daily summary",
          readers=(MONITOR,)),
    Entry(NOTIFIER_OUTBOX, Kind.LIST, NOTIFIER, "messages waiting for a channel",
          readers=(MONITOR,), cap="last 1000"),
    Entry(NOTIFIER_DELIVERY, Kind.HASH, NOTIFIER, "one alert's delivery per channel",
          readers=(MONITOR,), cap="TTL 7 days"),
    Entry(NOTIFIER_SEEN, Kind.STRING, NOTIFIER, "dedup marker: this alert was queued",
          readers=(MONITOR,), cap="TTL per alert"),
)  # fmt: skip
