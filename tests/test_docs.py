"""The docs keep up with the code: generated tables, links, sizes and headings.

README.md is the front door (at most 16 KB); the settings table is in
docs/configuration.md, every Redis key in docs/architecture.md, and each service's own
keys, settings, failures and figures in services/NAME/README.md.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from optbot.cli import app
from optbot.docs import (
    SECTIONS,
    Generated,
    MarkerError,
    begin_marker,
    end_marker,
    replace,
    rewrite,
    section,
    stale,
)
from shared.contract import ALL_STREAMS, ENTRIES, SERVICES
from shared.contract.doc import contract_table
from shared.settings import Settings, env_name
from shared.settings_doc import config_table, services_reading

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
README_MAX_BYTES = 16 * 1024
SERVICE_HEADINGS = (
    "What it does",
    "Streams and keys",
    "Settings",
    "Failure and recovery",
    "Measured",
)
DOCS = sorted(
    [
        README,
        ROOT / "bench" / "README.md",
        *(ROOT / "docs").glob("*.md"),
        *(ROOT / "services").glob("*/README.md"),
    ]
)

_FENCE = re.compile(r"^```.*?^```", re.M | re.S)
_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.M)


def _prose(text: str) -> str:
    """The text without code blocks and code spans: links and headings only count there."""
    return _CODE.sub("", _FENCE.sub("", text))


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.replace("`", "").lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading anchor of a Markdown text, duplicates numbered as GitHub does."""
    seen: dict[str, int] = {}
    out = set()
    for match in _HEADING.finditer(_FENCE.sub("", text)):
        slug = _slug(match.group(2))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def headings(text: str, level: int) -> list[str]:
    return [m.group(2) for m in _HEADING.finditer(_FENCE.sub("", text)) if len(m.group(1)) == level]


def test_readme_when_measured_fits_the_front_door_budget() -> None:
    size = len(README.read_bytes())
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes; move detail to docs/ or services/"


@pytest.mark.parametrize("g", SECTIONS, ids=lambda g: f"{g.path}:{g.name}")
def test_docs_section_when_generated_matches_the_code(g: Generated) -> None:
    text = (ROOT / g.path).read_text()
    assert section(text, g.name, g.path) == g.build(), "run: make docs"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_relative_link_when_followed_reaches_a_file_and_anchor(doc: Path) -> None:
    broken = []
    for target in _LINK.findall(_prose(doc.read_text())):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and (dest.suffix != ".md" or anchor not in anchors(dest.read_text())):
            broken.append(f"{target}: no such heading")
    assert not broken, broken


@pytest.mark.parametrize("service", SERVICES)
def test_service_readme_when_read_has_every_required_heading(service: str) -> None:
    readme = ROOT / "services" / service / "README.md"
    assert readme.exists(), f"services/{service} has no README.md"
    missing = set(SERVICE_HEADINGS) - set(headings(readme.read_text(), 2))
    assert not missing, f"services/{service}/README.md lacks ## {sorted(missing)}"


def test_service_dirs_when_listed_are_the_contract_services() -> None:
    dirs = {p.parent.name for p in (ROOT / "services").glob("*/__init__.py")}
    assert dirs == set(SERVICES)


@pytest.mark.parametrize("field", list(Settings.model_fields))
def test_configuration_doc_when_setting_exists_documents_it(field: str) -> None:
    assert f"| `{env_name(field)}` |" in (ROOT / "docs" / "configuration.md").read_text()


@pytest.mark.parametrize(
    "command", [c.name or getattr(c.callback, "__name__", "") for c in app.registered_commands]
)
def test_readme_when_command_exists_documents_it(command: str) -> None:
    assert f"`optbot {command}" in README.read_text()


@pytest.mark.parametrize("stream", ALL_STREAMS)
def test_architecture_doc_when_stream_exists_documents_it(stream: str) -> None:
    assert f"| `{stream}` |" in (ROOT / "docs" / "architecture.md").read_text()


def test_service_keys_table_when_built_lists_exactly_what_the_service_touches() -> None:
    table = contract_table("notifier")
    for e in ENTRIES:
        if e.name.startswith("svc:"):
            continue
        touched = "notifier" in (e.owner, *e.senders, *e.readers, *e.consumers)
        assert (f"| `{e.name}` |" in table) == touched, e.name


def test_service_settings_when_prefixed_go_to_their_service() -> None:
    assert services_reading("strat_take_profit_pct") == ("strategy",)
    assert services_reading("risk_max_positions") == ("strategy",)
    assert services_reading("sent_confirm") == ("market_data",)
    assert services_reading("redis_url") == ()
    table = config_table("strategy")
    assert "`OPTBOT_STRAT_TAKE_PROFIT_PCT`" in table and "`OPTBOT_REDIS_URL`" not in table


def test_section_when_replaced_reads_back_and_keeps_the_rest() -> None:
    text = f"intro\n{begin_marker('t')}\nold\n{end_marker('t')}\noutro\n"
    new = replace(text, "t", "| a |\n| b |")
    assert section(new, "t") == "| a |\n| b |"
    assert new.startswith("intro\n") and new.endswith("\noutro\n")
    assert replace(new, "t", "| a |\n| b |") == new


@pytest.mark.parametrize(
    "text",
    ["no markers", f"{begin_marker('t')} only", f"{end_marker('t')}\n{begin_marker('t')}"],
)
def test_section_when_markers_are_wrong_names_the_file(text: str) -> None:
    with pytest.raises(MarkerError, match=r"docs/x\.md"):
        section(text, "t", "docs/x.md")


def test_rewrite_when_a_section_is_stale_regenerates_only_that_section(tmp_path: Path) -> None:
    for g in SECTIONS:
        (tmp_path / g.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / g.path, tmp_path / g.path)
    target = tmp_path / "docs" / "configuration.md"
    target.write_text(target.read_text().replace("| `OPTBOT_MODE` |", "| `OPTBOT_MOOD` |"))
    assert [(g.path, g.name) for g in stale(tmp_path)] == [("docs/configuration.md", "settings")]
    assert [g.path for g in rewrite(tmp_path)] == ["docs/configuration.md"]
    assert stale(tmp_path) == []
    assert target.read_text() == (ROOT / "docs" / "configuration.md").read_text()
