"""The bus contract: every key declared once, one owner each, no key spelled in services/.

A service that spells ``"md:sentiment"`` itself is coupled through a name no code
declares; one that writes a hash by hand can rename a field its reader never sees.
"""

from __future__ import annotations

import ast
import fnmatch
import re
from collections import Counter
from pathlib import Path

import msgspec
import pytest

from shared import contract as c
from shared.acl import USERS
from shared.contract import ENTRIES, ROLES, TOLERATED_SECOND_WRITERS, Entry, Kind
from shared.contract.values import (
    CandidateRow,
    CandidatesHash,
    PnlFields,
    SentimentHash,
    decode_fields,
)
from shared.schemas import Direction, Sentiment
from tests import source_ast

ROOT = Path(__file__).resolve().parents[1]
# A string that is shaped like a key of ours (prefix, colon, no spaces), or a declared
# plain name (``account``) passed as a stream.
PREFIX = re.compile(r"^(md|gw|orders|strategy|sys|risk|sim|account|svc|notifier):[^\s,;]*$")
PLAIN_NAMES = {e.name for e in ENTRIES if ":" not in e.name}  # "account"
# Calls whose first argument is a stream: a plain name there is a key, elsewhere a word.
STREAM_CALLS = {
    "xadd", "xrange", "xrevrange", "xread", "xlen", "xtrim", "xinfo_stream", "xinfo_groups",
    "add", "consume", "latest_entry",
}  # fmt: skip


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of docstring nodes: prose may name keys."""
    out: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
            out.add(id(first.value))
    return out


def _plain_stream_arg(node: ast.AST) -> ast.Constant | None:
    """The first argument of a stream call when it is a declared plain name."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return None
    if node.func.attr not in STREAM_CALLS or not node.args:
        return None
    first = node.args[0]
    return first if isinstance(first, ast.Constant) and first.value in PLAIN_NAMES else None


def key_literals(source: str) -> list[tuple[int, str]]:
    """(line, text) of every string constant in ``source`` that spells a Redis key."""
    tree = source_ast.parse(source)
    docs = _docstrings(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docs
            and PREFIX.match(node.value)
        ):
            found.append((node.lineno, node.value))
        if (arg := _plain_stream_arg(node)) is not None:
            found.append((arg.lineno, str(arg.value)))
    return found


def test_services_when_scanned_spell_no_redis_key() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {text!r}"
        for path in sorted((ROOT / "services").rglob("*.py"))
        for line, text in key_literals(path.read_text())
    ]
    assert offenders == [], "import these names from shared.contract:\n" + "\n".join(offenders)


@pytest.mark.parametrize(
    "source",
    [
        'x = await redis.hget("md:sentiment", "state")',
        'KEY = "orders:working"',
        'def k(s):\n    return f"md:bars:{s}"',
        'pub.add("account", body)',
        'LEASE = "gw:lease:" + host',
    ],
)
def test_scanner_when_a_key_is_spelled_finds_it(source: str) -> None:
    assert key_literals(source), source


def test_scanner_when_words_only_look_like_keys_stays_quiet() -> None:
    source = '"""Reads md:sentiment."""\nPANELS = ("account", "orders")\nlog.info("strategy: x")'
    assert key_literals(source) == []


def test_every_entry_when_declared_has_one_owner_and_known_roles() -> None:
    names = Counter(e.name for e in ENTRIES)
    assert [n for n, k in names.items() if k > 1] == [], "declared twice"
    for e in ENTRIES:
        assert isinstance(e.owner, str) and e.owner in ROLES, e.name
        for role in (*e.readers, *e.consumers, *e.senders):
            assert role in ROLES, (e.name, role)
        assert e.doc, e.name
        assert not e.consumers or e.kind is Kind.STREAM, e.name
        if e.inbox:
            assert e.kind is Kind.STREAM and e.owner in (*e.consumers, c.OPERATOR), e.name


def _second_writers(e: Entry) -> tuple[str, ...]:
    return () if e.inbox else tuple(s for s in e.senders if s != e.owner)


def test_facts_when_written_have_one_writer_but_the_tolerated_ones() -> None:
    """A fact (not an inbox) has one writer; the known exceptions can only shrink."""
    extra = {e.name: _second_writers(e) for e in ENTRIES if _second_writers(e)}
    assert extra == TOLERATED_SECOND_WRITERS


def test_patterns_when_keys_made_match_only_their_own_entry() -> None:
    """No key could belong to two entries (two owners would both claim it)."""
    for a in ENTRIES:
        sample = re.sub(r"\{[a-z_]+\}", "x", a.name)
        owners = [b.name for b in ENTRIES if fnmatch.fnmatchcase(sample, b.pattern)]
        assert owners == [a.name], (sample, owners)


def test_acl_when_generated_gives_each_service_what_the_contract_names() -> None:
    users = {u.name: u for u in USERS}
    assert users[c.OPERATOR].admin  # the operator (CLI, backtest driver) may touch every key
    for e in ENTRIES:
        if e.owner in users and not e.inbox and e.owner != c.OPERATOR:
            assert e.pattern in users[e.owner].owns, (e.name, e.owner)
        for r in e.readers:
            assert r == c.OPERATOR or e.pattern in users[r].reads, (e.name, r)
        for r in e.consumers:
            assert r == c.OPERATOR or e.pattern in users[r].consumes, (e.name, r)
    declared = {e.pattern for e in ENTRIES}
    for u in USERS:
        assert set(u.reads + u.owns + u.appends + u.consumes) <= declared, u.name


# --- value types: the writer's output decodes with the reader's Struct -----------------------


def test_sentiment_hash_when_a_field_is_renamed_fails_to_decode() -> None:
    good = SentimentHash(
        state=Sentiment.BULLISH, since="s", reason="r", data_type="live", updated="u"
    )
    fields = good.fields() | {"spy_roc": "0.1000"}
    assert decode_fields(fields, SentimentHash) == good
    renamed = {("status" if k == "state" else k): v for k, v in fields.items()}
    with pytest.raises(msgspec.ValidationError, match="state"):
        decode_fields(renamed, SentimentHash)
    assert decode_fields({}, SentimentHash) is None  # no hash yet: no data, not an error


def test_candidates_hash_when_rows_renamed_fails_to_decode() -> None:
    rows = '[{"symbol": "AAPL", "direction": "long", "score": 1.5, "roc": 2}]'
    head = CandidatesHash(updated="u", count=1, data_type="live", excluded="{}", json=rows)
    decoded = decode_fields(head.fields(), CandidatesHash)
    assert decoded is not None
    assert decoded.rows() == [CandidateRow(symbol="AAPL", direction=Direction.LONG, score=1.5)]
    bad = msgspec.structs.replace(head, json='[{"sym": "AAPL", "direction": "long", "score": 1}]')
    with pytest.raises(msgspec.ValidationError, match="symbol"):
        bad.rows()


def test_pnl_fields_when_a_field_is_missing_fail_to_decode() -> None:
    fields = {f: "1.00" for f in PnlFields.__struct_fields__}
    assert decode_fields(fields, PnlFields) is not None
    del fields["equity"]
    with pytest.raises(msgspec.ValidationError, match="equity"):
        decode_fields(fields, PnlFields)
