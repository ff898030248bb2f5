"""The trader's channels: one Apprise URL each, known by an id that reveals nothing.

URLs carry tokens (a Telegram bot token, a webhook path, a mail password), so a
channel is named ``scheme-hash`` (``tgram-3fa2b1``) in logs, Redis and the page; the
URL itself lives only in memory, inside the Apprise object.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from dataclasses import dataclass
from typing import Any

import apprise

from shared.logs import get_logger

log = get_logger("optbot.notifier.channels")

# Apprise logs the hosts and sometimes paths it talks to; our own events say what
# happened, by channel id, so its logger stays quiet.
logging.getLogger("apprise").setLevel(logging.CRITICAL + 1)
logging.getLogger("apprise").propagate = False

# Split only where a new URL starts: a mailto:// may list recipients with commas.
_SPLIT = re.compile(r"[\s,]+(?=[A-Za-z][A-Za-z0-9+.-]*://)|\s+")


@dataclass(frozen=True)
class Message:
    """One message for one channel, as queued in its outbox."""

    entry: str  # sys:alerts entry id it delivers
    title: str
    body: str
    kind: str = "info"  # apprise notify type: info, success, warning, failure


class Channel:
    """One Apprise target; ``send`` returns an error text or '' on success."""

    def __init__(self, url: str, timeout_s: float) -> None:
        scheme = url.split("://", 1)[0].lower() if "://" in url else "invalid"
        digest = hashlib.sha256(url.encode()).hexdigest()[:6]
        self.id = f"{re.sub(r'[^a-z0-9]', '', scheme)[:12] or 'url'}-{digest}"
        self.timeout_s = timeout_s
        self._apprise = apprise.Apprise()
        self.valid = bool(self._apprise.add(url))
        for plugin in self._apprise:
            # Apprise sleeps up to 5.5 s between two sends to one service, inside the
            # send; our per-channel RateLimit paces instead, without holding a thread.
            plugin.request_rate_per_sec = 0

    async def send(self, msg: Message) -> str:
        if not self.valid:
            return "invalid URL (Apprise does not recognise it)"
        try:
            result: Any = await asyncio.wait_for(
                self._apprise.async_notify(
                    body=msg.body, title=msg.title, notify_type=msg.kind, timeout=self.timeout_s
                ),
                self.timeout_s + 5.0,
            )
        except TimeoutError:
            return f"no answer within {self.timeout_s:g} s"
        if result:
            return ""
        status = getattr(getattr(result, "status", None), "name", "FAILURE")
        return f"delivery failed ({status.lower()})"


def parse_urls(raw: str, timeout_s: float) -> list[Channel]:
    """``OPTBOT_ALERT_URLS`` into channels (spaces or commas between URLs)."""
    urls = [u.strip(",") for u in _SPLIT.split(raw.strip()) if u.strip(",")]
    channels = [Channel(u, timeout_s) for u in dict.fromkeys(urls)]
    for ch in channels:
        if not ch.valid:
            log.error("channel_invalid", channel=ch.id, hint="check OPTBOT_ALERT_URLS")
    return channels
