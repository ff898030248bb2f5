"""Parsing the project's own sources for the layout, contract and clock scans.

CPython 3.11 before 3.11.8 keeps the AST converter's recursion depth in state shared by
threads (gh-106905): an ``ast.parse`` while another thread of the test process parses
too (a worker thread left by an earlier test) can raise ``SystemError: AST constructor
recursion depth mismatch``, a false failure seen once in a `make test` run on 3.11.7.
The same source parsed again is the answer; any other error is raised as is.
"""

from __future__ import annotations

import ast
from pathlib import Path

ATTEMPTS = 3


def parse(source: str, filename: str = "<unknown>") -> ast.Module:
    for attempt in range(ATTEMPTS):
        try:
            return ast.parse(source, filename)
        except SystemError as exc:
            if "recursion depth mismatch" not in str(exc) or attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def parse_file(path: Path) -> ast.Module:
    return parse(path.read_text(), str(path))
