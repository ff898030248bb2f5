"""The "Streams and keys" tables, generated from the contract so they cannot drift.

``docs/architecture.md`` holds every entry; each ``services/NAME/README.md`` holds the
entries that service owns, writes, reads or consumes. ``make docs``
(``python -m optbot.docs``) rewrites them; tests/test_docs.py fails when a
committed table differs from ``ENTRIES``.
"""

from __future__ import annotations

from shared.contract import ENTRIES, Entry, Kind

COLUMNS = ("key", "type", "owner", "also writes", "readers", "consumer groups", "value",
           "cap / TTL", "what")  # fmt: skip
HEADER = "| " + " | ".join(COLUMNS) + " |"

_SHORT = {"gateway_adapter": "adapter", "market_data": "market_data", "tws_simulator": "simulator"}


def _roles(roles: tuple[str, ...]) -> str:
    return ", ".join(_SHORT.get(r, r) for r in roles) or "—"


def _row(e: Entry) -> str:
    kind = f"{e.kind.value} (inbox)" if e.inbox else e.kind.value
    senders = tuple(s for s in e.senders if s != e.owner or e.inbox)
    also = _roles(senders) + (" (XADD)" if senders and e.kind is Kind.STREAM else "")
    value = ", ".join(f"`{t.__name__}`" for t in e.value) or "—"
    cells = (f"`{e.name}`", kind, _roles((e.owner,)), also, _roles(e.readers),
             _roles(e.consumers), value, e.cap or "—", e.doc)  # fmt: skip
    return "| " + " | ".join(cells) + " |"


def touches(e: Entry, service: str) -> bool:
    """Whether ``service`` owns, writes, reads or consumes the entry."""
    return service in (e.owner, *e.senders, *e.readers, *e.consumers)


def contract_table(service: str | None = None) -> str:
    """Every entry, or (with ``service``) the entries it touches.

    Heartbeats collapse to one row per pattern: ``svc:{service}`` and its instances.
    """
    rows = [HEADER, "| " + " | ".join(["---"] * len(COLUMNS)) + " |"]
    beats = [e for e in ENTRIES if e.name.startswith("svc:")]
    rows += [_row(e) for e in ENTRIES if e not in beats and (not service or touches(e, service))]
    rows.append(
        "| `svc:{service}`, `svc:{service}:{instance}` | hash | each service its own | — "
        "| every other service | — | — | TTL OPTBOT_HEARTBEAT_TTL_S | heartbeat: pid, version, "
        "loop, lag (standby and other instances) |"
    )
    return "\n".join(rows)
