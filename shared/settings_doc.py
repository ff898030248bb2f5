"""README's configuration table, generated from the settings model so it cannot drift.

``python -m shared.settings_doc`` rewrites the table in README.md in place;
tests/test_docs.py fails when the committed table differs from the model.
"""

from __future__ import annotations

import sys
from pathlib import Path

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
    start = text.index(HEADER)
    end = text.find("\n\n", start)
    return text[start : end if end != -1 else len(text)]


def rewrite(readme: Path) -> bool:
    """Replace the table in ``readme``; True when it changed."""
    text = readme.read_text()
    new = text.replace(table_in(text), config_table())
    if new != text:
        readme.write_text(new)
    return new != text


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    print("README table updated" if rewrite(path) else "README table already current")
