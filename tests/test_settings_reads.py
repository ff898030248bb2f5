"""Each service reads only the settings of its own domains, or a cross read named with why.

The scan is syntactic: an attribute read off something called ``settings``, ``s``,
``_s`` or ``_settings`` (``settings.X``, ``s.X``, ``self.s.X``, ``self._s.X``,
``ctx.settings.X``, ``self.ctx.settings.X``...) whose name is a ``Settings`` field,
method or domain accessor. Other attributes of those names (``s.strip()``) are not
settings and are skipped.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.settings import DOMAINS
from shared.settings_reads import (
    CROSS_READS,
    DERIVED,
    SERVICE_DOMAINS,
    allowed,
    member_domains,
    services_reading,
)
from tests import source_ast

SERVICES = Path(__file__).resolve().parents[1] / "services"
RECEIVERS = frozenset({"settings", "s", "_s", "_settings"})
MEMBERS = member_domains()


def _service_dirs() -> list[str]:
    return sorted(p.name for p in SERVICES.iterdir() if (p / "__init__.py").is_file())


def _receiver(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def settings_reads(source: str) -> Iterator[tuple[int, str]]:
    """(line, member) of every settings read in ``source``."""
    for node in ast.walk(source_ast.parse(source)):
        if (
            isinstance(node, ast.Attribute)
            and _receiver(node.value) in RECEIVERS
            and node.attr in MEMBERS
        ):
            yield node.lineno, node.attr


def service_reads(service: str) -> Iterator[tuple[str, str]]:
    """(file:line, member) of every settings read under ``services/{service}/``."""
    for path in sorted((SERVICES / service).rglob("*.py")):
        for line, member in settings_reads(path.read_text()):
            yield f"{path.relative_to(SERVICES.parent)}:{line}", member


def test_declared_domains_when_listed_name_every_service_and_only_real_domains() -> None:
    assert sorted(SERVICE_DOMAINS) == _service_dirs()
    for service, domains in SERVICE_DOMAINS.items():
        assert domains <= set(DOMAINS), (service, domains - set(DOMAINS))
    for (service, member), why in CROSS_READS.items():
        assert service in SERVICE_DOMAINS and member in MEMBERS and why, (service, member)


@pytest.mark.parametrize("service", _service_dirs())
def test_service_when_scanned_reads_only_its_domains_or_named_cross_reads(service: str) -> None:
    outside = [
        f"{where}: {member} ({MEMBERS[member]})"
        for where, member in service_reads(service)
        if not allowed(service, member)
    ]
    assert not outside, (
        f"{service} reads settings outside its domains {sorted(SERVICE_DOMAINS[service])}; "
        "move the setting, or name the read in shared/settings_reads.CROSS_READS:\n  "
        + "\n  ".join(outside)
    )


def test_cross_reads_when_declared_are_still_made() -> None:
    made = {
        (name, DERIVED.get(member, member))
        for name in _service_dirs()
        for _, member in service_reads(name)
    }
    stale = sorted(set(CROSS_READS) - made)
    assert not stale, f"declared cross reads no code makes any more: {stale}"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("settings.risk_max_positions", ["risk_max_positions"]),
        ("self.s.strat_min_dte", ["strat_min_dte"]),
        ("self._s.ib_host", ["ib_host"]),
        ("ctx.settings.maxlen('x')", ["maxlen"]),
        ("self.ctx.settings.risk.risk_max_positions", ["risk"]),
        ("s.strip(); body.instance; ctx.instance", []),
    ],
)
def test_scan_when_given_source_finds_settings_reads(source: str, expected: list[str]) -> None:
    assert [member for _, member in settings_reads(source)] == expected


def test_scan_when_service_reads_another_domain_fails() -> None:
    (member,) = [m for _, m in settings_reads("self.settings.risk_max_positions")]
    assert not allowed("market_data", member)
    assert allowed("strategy", member)


def test_derived_members_when_listed_are_properties_of_their_fields_domain() -> None:
    for member, field in DERIVED.items():
        assert MEMBERS[member] == MEMBERS[field], member


def test_services_reading_when_a_field_is_read_across_domains_lists_both_services() -> None:
    assert services_reading("strat_starting_equity") == ("gateway_adapter", "strategy")
    assert services_reading("md_watchlist") == ("market_data", "monitor")
    assert services_reading("ib_login_grace_s") == ("gateway_adapter", "notifier")
    assert services_reading("maxlen_ticks") == ()  # every process: docs/configuration.md only
