"""What a contract entry says about one Redis key: name, kind, one owner, who else.

Why: the services are coupled only through Redis, so every key is an interface. One
``Entry`` per key (or key pattern) names its single owner (the one writer of a fact,
or the one handler of an inbox), the services that read it, consume it or send to it,
its value type and its cap or TTL. The ACL users and the docs tables come from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

GATEWAY: Final = "gateway_adapter"
MARKET_DATA: Final = "market_data"
STRATEGY: Final = "strategy"
MONITOR: Final = "monitor"
NOTIFIER: Final = "notifier"
SIMULATOR: Final = "tws_simulator"
OPERATOR: Final = "operator"  # the optbot CLI and the human: may do anything

SERVICES: Final = (GATEWAY, MARKET_DATA, STRATEGY, MONITOR, NOTIFIER, SIMULATOR)
ROLES: Final = (*SERVICES, OPERATOR)


class Kind(StrEnum):
    """The Redis type behind a key."""

    STREAM = "stream"
    HASH = "hash"
    LIST = "list"
    STRING = "string"


_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


@dataclass(frozen=True)
class Entry:
    """One Redis key or key pattern (``{placeholder}`` parts) and who may touch it.

    ``owner`` is exactly one role. For a fact it is the one writer; for an ``inbox``
    (a request stream like ``gw:commands``) it is the one handler, and ``senders``
    may only XADD to it. ``senders`` of anything else are second writers the contract
    tolerates only while they are listed in ``TOLERATED_SECOND_WRITERS``.
    """

    name: str
    kind: Kind
    owner: str
    doc: str
    readers: tuple[str, ...] = ()
    consumers: tuple[str, ...] = ()  # consumer groups (streams only)
    senders: tuple[str, ...] = ()
    value: tuple[type, ...] = ()  # bodies (streams), field or JSON value Structs
    cap: str = ""  # MAXLEN setting, list trim or TTL, in words
    inbox: bool = False
    scripts: bool = False  # the owner writes it from Lua (EVAL on its keys)

    @property
    def pattern(self) -> str:
        """The key as a glob (placeholders become ``*``): for ACL selectors and SCAN."""
        return _PLACEHOLDER.sub("*", self.name)

    def key(self, **parts: str | int) -> str:
        """The concrete key: ``md:bars:{symbol}`` with ``symbol="SPY"`` is ``md:bars:SPY``."""
        return self.name.format(**parts)

    def writers(self) -> tuple[str, ...]:
        """Every role that adds to it: the owner (unless an inbox's handler) and senders."""
        return (*(() if self.inbox else (self.owner,)), *self.senders)
