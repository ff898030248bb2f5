"""The configuration tables, generated from the settings model so they cannot drift.

``docs/configuration.md`` holds every setting, in domain order; each
``services/NAME/README.md`` holds the rows its service reads: its own domains and its
named cross reads (``shared/settings_reads.py``), not those every process reads.
``make docs`` (``python -m optbot.docs``) rewrites them; tests/test_docs.py fails
when a committed table differs from the model.
"""

from __future__ import annotations

from shared.settings import Settings, env_name
from shared.settings_reads import services_reading

HEADER = "| variable | default | meaning |"


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
