"""The configuration tables, generated from the settings model so they cannot drift.

``docs/configuration.md`` holds every setting; each ``services/NAME/README.md`` holds the
rows its service reads. ``make docs`` (``python -m optbot.docs``) rewrites them;
tests/test_docs.py fails when a committed table differs from the model.
"""

from __future__ import annotations

from typing import Final

from shared.settings import Settings, env_name

HEADER = "| variable | default | meaning |"

# Which service reads a setting, by its field-name prefix, until the settings are
# grouped by domain; a setting no prefix names is shared (docs/configuration.md only).
_PREFIX_SERVICE: Final = (
    ("ib_", "gateway_adapter"),
    ("gw_", "gateway_adapter"),
    ("md_", "market_data"),
    ("mom_", "market_data"),
    ("sent_", "market_data"),
    ("strat_", "strategy"),
    ("risk_", "strategy"),
    ("monitor_", "monitor"),
    ("control_token", "monitor"),
    ("alert_", "notifier"),
    ("sim_", "tws_simulator"),
)


def services_reading(field: str) -> tuple[str, ...]:
    """The services whose README lists setting ``field``: the one place to remap rows."""
    return tuple(service for prefix, service in _PREFIX_SERVICE if field.startswith(prefix))


def _default(value: object) -> str:
    value = getattr(value, "value", value)
    if hasattr(value, "get_secret_value"):
        value = "***" if value.get_secret_value() else ""
    return f"`{value}`" if value != "" else "(empty)"


def config_table(service: str | None = None) -> str:
    """Every setting, or (with ``service``) the settings that service reads."""
    rows = [HEADER, "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        if service is None or service in services_reading(name):
            rows.append(f"| `{env_name(name)}` | {_default(field.default)} | {field.description} |")
    return "\n".join(rows)
