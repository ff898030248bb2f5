"""Generated sections of the docs: where each one is and what builds it.

Why: the settings table and the streams-and-keys tables are derived from the code
(``shared/settings.py``, ``shared/contract/``), so they are written by a generator and
never by hand. Each lives between two HTML comments in its Markdown file::

    <!-- BEGIN GENERATED settings (make docs) -->
    ...
    <!-- END GENERATED settings -->

``python -m optbot.docs`` (``make docs``) rewrites every section in place;
``--check`` only reports stale ones (exit 1). ``tests/test_docs.py`` compares them too.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shared.contract import SERVICES
from shared.contract.doc import contract_table
from shared.settings_doc import config_table

ROOT = Path(__file__).resolve().parent.parent


class MarkerError(ValueError):
    """A generated section's markers are missing, repeated or out of order."""


def begin_marker(name: str) -> str:
    return f"<!-- BEGIN GENERATED {name} (make docs) -->"


def end_marker(name: str) -> str:
    return f"<!-- END GENERATED {name} -->"


def _bounds(text: str, name: str, where: str) -> tuple[int, int]:
    begin, end = begin_marker(name), end_marker(name)
    if text.count(begin) != 1 or text.count(end) != 1:
        raise MarkerError(f"{where}: expected one {begin!r} and one {end!r}")
    start, stop = text.index(begin) + len(begin), text.index(end)
    if stop < start:
        raise MarkerError(f"{where}: {end!r} comes before {begin!r}")
    return start, stop


def section(text: str, name: str, where: str = "text") -> str:
    """The content between the markers of ``name``, without the surrounding newlines."""
    start, stop = _bounds(text, name, where)
    return text[start:stop].strip("\n")


def replace(text: str, name: str, content: str, where: str = "text") -> str:
    """``text`` with the section ``name`` holding ``content``."""
    start, stop = _bounds(text, name, where)
    return f"{text[:start]}\n{content}\n{text[stop:]}"


@dataclass(frozen=True)
class Generated:
    """One generated section: its file (relative to the repo), name and builder."""

    path: str
    name: str
    build: Callable[[], str]


def _service_sections(service: str) -> tuple[Generated, Generated]:
    readme = f"services/{service}/README.md"
    return (
        Generated(readme, "keys", lambda: contract_table(service)),
        Generated(readme, "settings", lambda: config_table(service)),
    )


SECTIONS: tuple[Generated, ...] = (
    Generated("docs/configuration.md", "settings", config_table),
    Generated("docs/architecture.md", "keys", contract_table),
    *(s for service in SERVICES for s in _service_sections(service)),
)


def stale(root: Path = ROOT) -> list[Generated]:
    """The sections whose committed text differs from what the code produces now."""
    return [
        g for g in SECTIONS if section((root / g.path).read_text(), g.name, g.path) != g.build()
    ]


def rewrite(root: Path = ROOT) -> list[Generated]:
    """Regenerate every section in place; the ones that changed."""
    changed = stale(root)
    for g in changed:
        path = root / g.path
        path.write_text(replace(path.read_text(), g.name, g.build(), g.path))
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="regenerate the generated docs sections")
    parser.add_argument("--check", action="store_true", help="only report stale sections")
    args = parser.parse_args(argv)
    changed = stale() if args.check else rewrite()
    for g in changed:
        print(f"{'stale' if args.check else 'updated'}: {g.path} ({g.name})")
    if not changed:
        print("generated docs sections are current")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
