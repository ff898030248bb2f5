"""Generated README tables: find one by its header row, replace it, say whether it changed.

The settings table (``shared.settings_doc``) and the keys table (``shared.contract.doc``)
are kept in step with the code this way; ``tests/test_docs.py`` fails when one is stale.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path


def table_in(text: str, header: str) -> str:
    """The table that starts with ``header`` and runs to the next blank line."""
    start = text.index(header)
    end = text.find("\n\n", start)
    return text[start : end if end != -1 else len(text)]


def rewrite(readme: Path, header: str, table: str) -> bool:
    """Replace the table in ``readme``; True when it changed."""
    text = readme.read_text()
    new = text.replace(table_in(text, header), table)
    if new != text:
        readme.write_text(new)
    return new != text


def main(header: str, build: Callable[[], str]) -> None:
    """``python -m …  [README.md]``: rewrite the table and say what happened."""
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    changed = rewrite(path, header, build())
    print("README table updated" if changed else "README table already current")
