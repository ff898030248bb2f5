"""scripts/audit.py: OSV range evaluation, the offline audit, the CLI and the committed snapshot.

Every CLI run passes --offline, so no test reaches for pip-audit's services.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "audit.py"
SNAPSHOT = ROOT / "security" / "advisories.json"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("optbot_audit", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


audit = _load()


def advisory(
    ranges: list[list[dict[str, str]]] | None = None,
    versions: list[str] | None = None,
    id: str = "TEST-1",
    aliases: list[str] | None = None,
) -> dict[str, Any]:
    ranges = ranges or []
    return {
        "id": id,
        "aliases": aliases or [],
        "summary": "test advisory",
        "ranges": ranges,
        "versions": versions or [],
        "fixed": sorted({e["fixed"] for r in ranges for e in r if "fixed" in e}),
    }


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--offline", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


# --- range evaluation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "expected"),
    [("0.0.1", True), ("0.1a1", True), ("1.9.9", True), ("2.0", False), ("3.0", False)],
)
def test_introduced_zero_fixed(version: str, expected: bool) -> None:
    events = [{"introduced": "0"}, {"fixed": "2.0"}]
    assert audit.in_range(Version(version), events) is expected


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("0.9", False),
        ("1.0", True),  # introduced is inclusive
        ("1.4.9", True),
        ("1.5", False),  # fixed is exclusive
        ("1.9", False),
        ("2.0", True),
        ("2.2.1", True),
        ("2.3", False),
        ("10.0", False),
    ],
)
def test_two_intervals_in_any_event_order(version: str, expected: bool) -> None:
    events = [{"fixed": "2.3"}, {"introduced": "2.0"}, {"fixed": "1.5"}, {"introduced": "1.0"}]
    assert audit.in_range(Version(version), events) is expected


@pytest.mark.parametrize(
    ("version", "expected"), [("1.2", False), ("1.3", True), ("1.7", True), ("1.7.1", False)]
)
def test_last_affected_is_inclusive(version: str, expected: bool) -> None:
    events = [{"introduced": "1.3"}, {"last_affected": "1.7"}]
    assert audit.in_range(Version(version), events) is expected


def test_introduced_without_end_affects_every_later_version() -> None:
    events = [{"introduced": "4.0"}]
    assert audit.in_range(Version("99.0"), events)
    assert not audit.in_range(Version("3.9"), events)


def test_explicit_versions_list_alone() -> None:
    adv = advisory(versions=["1.0", "1.1.0", "2.0rc1"])
    assert audit.affects(adv, "1.0")
    assert audit.affects(adv, "1.1")  # the same version as 1.1.0 under PEP 440
    assert audit.affects(adv, "2.0rc1")
    assert not audit.affects(adv, "1.2")
    assert not audit.affects(adv, "2.0")


def test_range_or_versions_list() -> None:
    adv = advisory(ranges=[[{"introduced": "3.0"}, {"fixed": "3.2"}]], versions=["1.0"])
    assert audit.affects(adv, "1.0")
    assert audit.affects(adv, "3.1")
    assert not audit.affects(adv, "3.2")
    assert not audit.affects(adv, "2.0")


def test_read_pins_normalizes_names(tmp_path: Path) -> None:
    path = tmp_path / "constraints.txt"
    path.write_text("# locked\nPyYAML==6.0.4\ntyping_extensions==4.16.0\n\nzope.interface==7.0\n")
    assert audit.read_pins(path) == {
        "pyyaml": "6.0.4",
        "typing-extensions": "4.16.0",
        "zope-interface": "7.0",
    }
    path.write_text("requests>=2\n")
    with pytest.raises(audit.AuditError, match="not a `name==version` pin"):
        audit.read_pins(path)


def test_offline_audit_findings_ignores_and_missing_packages() -> None:
    snapshot = {
        "packages": {
            "foo": [
                advisory([[{"introduced": "0"}, {"fixed": "1.5"}]], id="TEST-1", aliases=["CVE-1"]),
                advisory([[{"introduced": "2.0"}]], id="TEST-2"),
            ],
            "bar": [],
        }
    }
    found, ignored = audit.audit_offline({"foo": "1.2", "bar": "0.1"}, snapshot, set())
    assert [(f.package, f.version, f.id, f.fixed) for f in found] == [
        ("foo", "1.2", "TEST-1", ("1.5",))
    ]
    assert ignored == []
    found, ignored = audit.audit_offline({"foo": "1.2"}, snapshot, {"CVE-1"})  # by alias
    assert found == [] and [f.id for f in ignored] == ["TEST-1"]
    with pytest.raises(audit.AuditError, match="not in the advisory snapshot: baz"):
        audit.audit_offline({"baz": "1.0"}, snapshot, set())


# --- pip-audit's report -----------------------------------------------------------------


def test_pip_audit_skipping_everything_is_unavailable() -> None:
    report = {
        "dependencies": [
            {
                "name": "anyio",
                "skip_reason": "Dependency not found on PyPI and could not be audited",
            },
            {
                "name": "idna",
                "skip_reason": "Dependency not found on PyPI and could not be audited",
            },
        ],
        "fixes": [],
    }
    result = audit.parse_pip_audit(json.dumps(report), "", 0)
    assert not result.available
    assert "every one of 2 packages skipped" in result.reason


def test_pip_audit_crash_is_unavailable() -> None:
    stderr = "Traceback (most recent call last):\nrequests.exceptions.ConnectionError: no host\n"
    result = audit.parse_pip_audit("", stderr, 1)
    assert not result.available
    assert result.reason == "pip-audit exited 1: requests.exceptions.ConnectionError: no host"


def test_pip_audit_findings_and_partial_skips() -> None:
    report = {
        "dependencies": [
            {
                "name": "Starlette",
                "version": "0.24.0",
                "vulns": [
                    {
                        "id": "PYSEC-2023-48",
                        "fix_versions": ["0.25.0"],
                        "aliases": ["CVE-2023-30798"],
                        "description": "Multipart DoS. More text.",
                    }
                ],
            },
            {"name": "anyio", "version": "4.16.0", "vulns": []},
            {"name": "cody_special", "skip_reason": "Dependency not found on PyPI"},
        ],
        "fixes": [],
    }
    result = audit.parse_pip_audit(json.dumps(report), "", 1)
    assert result.available and result.audited == 2
    assert result.skipped == ["cody-special"]
    [finding] = result.findings
    assert (finding.package, finding.id, finding.fixed) == (
        "starlette",
        "PYSEC-2023-48",
        ("0.25.0",),
    )
    assert finding.summary == "Multipart DoS"


# --- the command line, on the committed snapshot --------------------------------------


def test_vulnerable_pin_fails_and_names_the_advisory(tmp_path: Path) -> None:
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("anyio==4.16.0\nstarlette==0.24.0\n")
    proc = run_cli("--constraints", str(constraints))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "VULNERABLE starlette 0.24.0: PYSEC-2023-48" in proc.stdout
    assert "fixed in 0.25.0" in proc.stdout
    assert "anyio" not in proc.stdout.split("offline audit:", 1)[1].split("\n", 1)[1]


def test_clean_pin_passes_with_one_line_summary(tmp_path: Path) -> None:
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("starlette==0.27.0\nanyio==4.16.0\n")
    proc = run_cli("--constraints", str(constraints))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("2 packages checked against pypa/advisory-database snapshot 2024-")
    assert last.endswith("no known vulnerabilities")


def test_snapshot_age_when_dated_counts_whole_days_in_utc() -> None:
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    assert audit.snapshot_age_days({"date": "2024-10-10T17:35:05+00:00"}, now) == 782
    assert audit.snapshot_age_days({"date": "2026-12-02T11:00:00"}, now) == 0  # naive: UTC
    with pytest.raises(audit.AuditError, match="no valid date"):
        audit.snapshot_age_days({"date": "last tuesday"}, now)


def test_offline_audit_when_run_prints_the_data_date_age_and_what_it_cannot_know(
    tmp_path: Path,
) -> None:
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("starlette==0.27.0\n")
    date = json.loads(SNAPSHOT.read_text())["date"]
    days = (datetime.now(UTC) - datetime.fromisoformat(date)).days
    proc = run_cli("--constraints", str(constraints))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (
        f"advisory data from {date[:10]}, {days} days old: "
        "vulnerabilities published since then are not known to this check"
    ) in proc.stdout
    assert f"{days} days old: no known vulnerabilities" in proc.stdout.splitlines()[-1]
    assert ("WARNING: the advisory snapshot is older than" in proc.stdout) == (days > 90)


def test_offline_audit_when_snapshot_older_than_max_age_cannot_audit(tmp_path: Path) -> None:
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("starlette==0.27.0\n")
    proc = run_cli("--constraints", str(constraints), "--max-age-days", "1")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "days old (--max-age-days 1)" in proc.stderr
    assert "no known vulnerabilities" not in proc.stdout


def test_ignore_accepts_named_advisories_only(tmp_path: Path) -> None:
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("starlette==0.24.0\n")
    # 0.24.0 is also in PYSEC-2023-83 (fixed 0.27.0): ignoring one advisory is not enough
    proc = run_cli("--constraints", str(constraints), "--ignore", "PYSEC-2023-48")
    assert proc.returncode == 1
    assert "ignored (--ignore): starlette 0.24.0: PYSEC-2023-48" in proc.stdout
    assert "VULNERABLE starlette 0.24.0: PYSEC-2023-83" in proc.stdout
    proc = run_cli(
        "--constraints", str(constraints), "--ignore", "PYSEC-2023-48", "--ignore", "CVE-2023-29159"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "VULNERABLE" not in proc.stdout


def test_package_missing_from_snapshot_cannot_be_audited(tmp_path: Path) -> None:
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("surely-not-a-locked-package==1.0\n")
    proc = run_cli("--constraints", str(constraints))
    assert proc.returncode == 2
    assert "not in the advisory snapshot: surely-not-a-locked-package" in proc.stderr


def test_refresh_from_a_git_dir(tmp_path: Path) -> None:
    db = tmp_path / "advisory-database"
    (db / "vulns" / "foo").mkdir(parents=True)
    (db / "vulns" / "foo" / "PYSEC-1.yaml").write_text(
        "id: PYSEC-1\n"
        "details: First line. Second sentence.\n"
        "aliases: [CVE-1]\n"
        "affected:\n"
        "- package: {name: Foo_Bar, ecosystem: PyPI}\n"
        "  ranges:\n"
        "  - {type: GIT, repo: 'x', events: [{introduced: '0'}, {fixed: abc123}]}\n"
        "  - {type: ECOSYSTEM, events: [{introduced: '0'}, {fixed: '1.5'}]}\n"
        "  versions: ['1.0', '1.4']\n"
    )
    (db / "vulns" / "foo" / "PYSEC-2.yaml").write_text(
        "id: PYSEC-2\ndetails: gone\nwithdrawn: '2024-01-01T00:00:00Z'\n"
        "affected:\n- package: {name: foo-bar, ecosystem: PyPI}\n"
        "  ranges: [{type: ECOSYSTEM, events: [{introduced: '0'}]}]\n"
    )
    (db / "vulns" / "other").mkdir()
    (db / "vulns" / "other" / "PYSEC-3.yaml").write_text(
        "id: PYSEC-3\ndetails: other\n"
        "affected:\n- package: {name: other, ecosystem: PyPI}\n"
        "  ranges: [{type: ECOSYSTEM, events: [{introduced: '0'}]}]\n"
    )
    git = ["git", "-C", str(db), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "snapshot"], check=True)
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("foo.bar==1.2\nclean==1.0\n")
    out = tmp_path / "advisories.json"
    refresh = run_cli("--constraints", str(constraints), "--advisories", str(out), "--refresh")
    assert refresh.returncode == 2  # --refresh needs its path
    args = ["--constraints", str(constraints), "--advisories", str(out)]
    proc = run_cli(*args, "--refresh", str(db))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(out.read_text())
    assert data["license"] == "CC-BY-4.0" and len(data["commit"]) == 40
    assert data["packages"] == {
        "clean": [],
        "foo-bar": [
            {
                "id": "PYSEC-1",
                "aliases": ["CVE-1"],
                "summary": "First line",
                "ranges": [[{"introduced": "0"}, {"fixed": "1.5"}]],
                "versions": ["1.0", "1.4"],
                "fixed": ["1.5"],
            }
        ],
    }
    proc = run_cli(*args)
    assert proc.returncode == 1 and "VULNERABLE foo-bar 1.2: PYSEC-1 (CVE-1)" in proc.stdout


# --- the committed snapshot -------------------------------------------------------------


def test_committed_snapshot_covers_every_locked_package() -> None:
    data = json.loads(SNAPSHOT.read_text())
    assert data["source"] == "https://github.com/pypa/advisory-database"
    assert data["license"] == "CC-BY-4.0" and "CC-BY-4.0" in data["attribution"]
    assert len(data["commit"]) == 40 and data["date"][:4].isdigit()
    pins = audit.read_pins(ROOT / "constraints.txt")
    missing = sorted(set(pins) - set(data["packages"]))
    assert not missing, f"refresh security/advisories.json (scripts/audit.py --refresh): {missing}"
    assert data["packages"]["starlette"], "the CLI tests rely on starlette's advisories"
