"""README's configuration table, generated from the settings model so it cannot drift.

``python -m shared.settings_doc`` rewrites the table in README.md in place;
tests/test_docs.py fails when the committed table differs from the model.
"""

from __future__ import annotations

from shared import readme_tables
from shared.settings import Settings, env_name

HEADER = "| variable | default | meaning |"


def _default(value: object) -> str:
    value = getattr(value, "value", value)
    if hasattr(value, "get_secret_value"):
        value = "***" if value.get_secret_value() else ""
    return f"`{value}`" if value != "" else "(empty)"


def config_table() -> str:
    rows = [HEADER, "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        rows.append(f"| `{env_name(name)}` | {_default(field.default)} | {field.description} |")
    return "\n".join(rows)


def table_in(text: str) -> str:
    return readme_tables.table_in(text, HEADER)


if __name__ == "__main__":
    readme_tables.main(HEADER, config_table)
