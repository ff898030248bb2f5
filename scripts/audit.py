#!/usr/bin/env python3
"""Audit the locked dependencies (constraints.txt) for known vulnerabilities.

Why not a bare ``pip-audit`` call: this project's machines and CI reach only the
package indexes. pip-audit's services are the PyPI JSON API (404 here) and the
OSV API (not resolvable here); with the first it marks every package "not found",
prints "No known vulnerabilities found" and exits 0, a green check that checked
nothing. So this script runs pip-audit first and reads its JSON report; when the
service did not answer (an error, or every package skipped), it checks the pins
against ``security/advisories.json``, a committed extract of the PyPA advisory
database, and says so. ``--refresh`` regenerates that extract from a clone.

The snapshot knows nothing published after its date, so every offline run prints that
date and its age, warns past ``STALE_DAYS``, and ``--max-age-days`` turns the warning
into a failure.

Exit status: 0 no known vulnerability, 1 a pin is vulnerable, 2 cannot audit (also: the
snapshot is older than ``--max-age-days``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict

from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "constraints.txt"
SNAPSHOT = ROOT / "security" / "advisories.json"
SOURCE = "https://github.com/pypa/advisory-database"
ATTRIBUTION = (
    "Advisory data from the Python Packaging Advisory Database "
    "(https://github.com/pypa/advisory-database), licensed CC-BY-4.0 "
    "(https://creativecommons.org/licenses/by/4.0/). Reduced to the fields below "
    "(first line of details, ECOSYSTEM ranges, versions) for the packages in "
    "constraints.txt; withdrawn advisories left out."
)
EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")
STALE_DAYS = 90  # older advisory data gets a WARNING line


class Advisory(TypedDict):
    id: str
    aliases: list[str]
    summary: str
    ranges: list[list[dict[str, str]]]  # OSV ECOSYSTEM ranges: their events
    versions: list[str]  # explicitly affected versions
    fixed: list[str]


class AuditError(Exception):
    """The audit cannot be done (exit status 2)."""


@dataclass(frozen=True)
class Finding:
    package: str
    version: str
    id: str
    aliases: tuple[str, ...]
    fixed: tuple[str, ...]
    summary: str

    def line(self) -> str:
        ids = self.id + (f" ({', '.join(self.aliases)})" if self.aliases else "")
        fixed = ", ".join(self.fixed) or "no fixed version"
        return f"{self.package} {self.version}: {ids}, fixed in {fixed}: {self.summary}"


@dataclass
class LiveResult:
    available: bool
    reason: str = ""
    findings: list[Finding] = field(default_factory=list)
    audited: int = 0
    skipped: list[str] = field(default_factory=list)


def normalize(name: str) -> str:
    """PEP 503 normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def first_line(text: str, limit: int = 160) -> str:
    """First line of an advisory's text, cut to its first sentence and ``limit`` chars."""
    line = text.strip().split("\n", 1)[0]
    line = line.split(". ", 1)[0].rstrip(".")
    return line if len(line) <= limit else line[: limit - 3].rstrip() + "..."


def read_pins(path: Path) -> dict[str, str]:
    """``name==version`` lines (pip freeze format) as {normalized name: version}."""
    pins: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*(\S+)", line)
        if match is None:
            raise AuditError(f"{path}:{number}: not a `name==version` pin: {raw!r}")
        pins[normalize(match.group(1))] = match.group(3)
    return pins


def _parse(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def in_range(version: Version, events: Sequence[Mapping[str, str]]) -> bool:
    """Whether ``version`` lies in one OSV ECOSYSTEM range.

    The events are walked in version order (``introduced: "0"`` first, and at an equal
    version ``introduced`` before the others); the last boundary passed decides:
    ``introduced`` opens (inclusive), ``fixed`` and ``limit`` close (exclusive),
    ``last_affected`` closes after its version (inclusive).
    """
    bounds: list[tuple[int, Version | None, int, str]] = []
    for event in events:
        for kind, raw in event.items():
            if kind not in EVENT_KINDS:
                continue
            if kind == "introduced" and raw == "0":
                bounds.append((0, None, 0, kind))
                continue
            bound = _parse(raw)
            if bound is not None:
                bounds.append((1, bound, 0 if kind == "introduced" else 1, kind))
    bounds.sort(key=lambda b: (b[0], b[1] or Version("0"), b[2]))
    affected = False
    for _, bound, _, kind in bounds:
        if bound is None:
            affected = True
        elif kind == "introduced":
            affected = affected or version >= bound
        elif kind in ("fixed", "limit"):
            affected = affected and version < bound
        else:  # last_affected
            affected = affected and version <= bound
    return affected


def affects(advisory: Advisory, version: str) -> bool:
    """OSV: affected when in any range or in the explicit versions list."""
    parsed = _parse(version)
    for listed in advisory["versions"]:
        if listed == version or (parsed is not None and _parse(listed) == parsed):
            return True
    return parsed is not None and any(in_range(parsed, r) for r in advisory["ranges"])


def _ignored(ids: Iterable[str], ignore: set[str]) -> bool:
    return any(i in ignore for i in ids)


def load_snapshot(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise AuditError(f"{path} missing: generate it with --refresh")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def audit_offline(
    pins: Mapping[str, str], snapshot: Mapping[str, Any], ignore: set[str]
) -> tuple[list[Finding], list[Finding]]:
    """Findings and ignored findings of the pins against the snapshot."""
    packages: dict[str, list[Advisory]] = snapshot["packages"]
    missing = sorted(set(pins) - set(packages))
    if missing:
        raise AuditError(
            f"not in the advisory snapshot: {', '.join(missing)}; regenerate it with "
            "`python scripts/audit.py --refresh PATH_TO_ADVISORY_DATABASE` (see docs/security.md)"
        )
    found: list[Finding] = []
    skipped: list[Finding] = []
    for name, version in sorted(pins.items()):
        for adv in packages[name]:
            if affects(adv, version):
                finding = Finding(
                    name,
                    version,
                    adv["id"],
                    tuple(adv["aliases"]),
                    tuple(adv["fixed"]),
                    adv["summary"],
                )
                ids = [adv["id"], *adv["aliases"]]
                (skipped if _ignored(ids, ignore) else found).append(finding)
    return found, skipped


def _pip_audit_command() -> list[str] | None:
    if importlib.util.find_spec("pip_audit") is not None:
        return [sys.executable, "-m", "pip_audit"]
    exe = shutil.which("pip-audit")
    return [exe] if exe else None


def audit_live(constraints: Path, service: str, timeout: float) -> LiveResult | None:
    """pip-audit over the pins; None when pip-audit is not installed."""
    command = _pip_audit_command()
    if command is None:
        return None
    command += ["-r", str(constraints), "--no-deps", "--disable-pip"]
    command += ["--progress-spinner", "off", "--format", "json", "--timeout", "15"]
    command += ["--vulnerability-service", service]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return LiveResult(False, f"pip-audit timed out after {timeout:.0f} s")
    return parse_pip_audit(proc.stdout, proc.stderr, proc.returncode)


def parse_pip_audit(stdout: str, stderr: str, returncode: int) -> LiveResult:
    """Read pip-audit's ``--format json`` report; unavailable when it has none or skipped all."""
    try:
        deps: list[dict[str, Any]] = json.loads(stdout)["dependencies"]
    except (ValueError, KeyError, TypeError):
        lines = stderr.strip().splitlines() or ["no output"]
        return LiveResult(False, f"pip-audit exited {returncode}: {lines[-1]}")
    audited = [d for d in deps if "skip_reason" not in d]
    skipped = [normalize(d["name"]) for d in deps if "skip_reason" in d]
    if not audited:
        first = deps[0]["skip_reason"] if deps else "no packages"
        return LiveResult(False, f"every one of {len(deps)} packages skipped ({first!r})")
    findings = [
        Finding(
            normalize(dep["name"]),
            dep["version"],
            vuln["id"],
            tuple(vuln.get("aliases", [])),
            tuple(vuln.get("fix_versions", [])),
            first_line(vuln.get("description") or ""),
        )
        for dep in audited
        for vuln in dep.get("vulns", [])
    ]
    return LiveResult(True, findings=findings, audited=len(audited), skipped=skipped)


def _snapshot_label(snapshot: Mapping[str, Any]) -> str:
    return f"pypa/advisory-database snapshot {snapshot['date'][:10]} (commit {snapshot['commit']})"


def snapshot_age_days(snapshot: Mapping[str, Any], now: datetime | None = None) -> int:
    """Whole days between the snapshot's commit date and ``now`` (UTC)."""
    try:
        taken = datetime.fromisoformat(str(snapshot["date"]))
    except (KeyError, ValueError) as exc:
        raise AuditError(f"the snapshot has no valid date: {exc}") from exc
    if taken.tzinfo is None:
        taken = taken.replace(tzinfo=UTC)
    return max(0, ((now or datetime.now(UTC)) - taken).days)


def check_age(snapshot: Mapping[str, Any], max_age_days: int | None) -> int:
    """Print the advisory data's date and age; raise past ``max_age_days``."""
    days = snapshot_age_days(snapshot)
    date = str(snapshot["date"])[:10]
    print(
        f"offline audit: advisory data from {date}, {days} days old: "
        "vulnerabilities published since then are not known to this check"
    )
    if max_age_days is not None and days > max_age_days:
        raise AuditError(
            f"the advisory snapshot is {days} days old (--max-age-days {max_age_days}); "
            "refresh it with `python scripts/audit.py --refresh PATH_TO_ADVISORY_DATABASE`"
        )
    if days > STALE_DAYS:
        print(
            f"WARNING: the advisory snapshot is older than {STALE_DAYS} days; "
            "refresh it (docs/security.md, Dependency audit)"
        )
    return days


def audit(args: argparse.Namespace) -> int:
    pins = read_pins(args.constraints)
    ignore = set(args.ignore)
    offline_pins: dict[str, str] = pins
    live = None if args.offline else audit_live(args.constraints, args.service, args.timeout)
    findings: list[Finding] = []
    ignored: list[Finding] = []
    sources: list[str] = []
    if live is None:
        print(
            "live audit: " + ("skipped (--offline)" if args.offline else "pip-audit not installed")
        )
    elif not live.available:
        print(f"live audit: pip-audit ({args.service} service) unreachable: {live.reason}")
        print("live audit: falling back to the committed offline snapshot")
    else:
        for f in live.findings:
            (ignored if _ignored([f.id, *f.aliases], ignore) else findings).append(f)
        print(f"live audit: pip-audit ({args.service} service) checked {live.audited} packages")
        sources.append(f"pip-audit ({args.service} service)")
        offline_pins = {name: pins[name] for name in live.skipped if name in pins}
    if offline_pins:
        snapshot = load_snapshot(args.advisories)
        label = _snapshot_label(snapshot)
        print(
            f"offline audit: {len(offline_pins)} packages against {args.advisories.name}, {label}"
        )
        days = check_age(snapshot, args.max_age_days)
        sources.append(f"{label}, {days} days old")
        more, more_ignored = audit_offline(offline_pins, snapshot, ignore)
        findings += more
        ignored += more_ignored
    for f in ignored:
        print(f"ignored (--ignore): {f.line()}")
    matched = {i for f in [*findings, *ignored] for i in (f.id, *f.aliases)}
    for stale in sorted(ignore - matched):
        print(f"note: --ignore {stale} matched nothing; drop it")
    if findings:
        for f in findings:
            print(f"VULNERABLE {f.line()}")
        print(f"{len(findings)} known vulnerabilities in {len({f.package for f in findings})} pins")
        return 1
    print(f"{len(pins)} packages checked against {' + '.join(sources)}: no known vulnerabilities")
    return 0


def _git(repo: Path, *args: str, data: bytes | None = None) -> bytes:
    return subprocess.run(
        ["git", "-C", str(repo), *args], input=data, capture_output=True, check=True
    ).stdout


def _read_advisories(repo: Path) -> Iterable[dict[str, Any]]:
    """Every YAML advisory under vulns/ at HEAD (of a checkout or a bare git dir)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    listing = _git(repo, "ls-tree", "-r", "HEAD", "vulns/").decode().splitlines()
    blobs = [line.split()[2] for line in listing if line.endswith(".yaml")]
    out = _git(repo, "cat-file", "--batch", data="".join(b + "\n" for b in blobs).encode())
    pos = 0
    while pos < len(out):
        header_end = out.index(b"\n", pos)
        size = int(out[pos:header_end].split()[2])
        yield yaml.load(out[header_end + 1 : header_end + 1 + size], Loader=loader)
        pos = header_end + 1 + size + 1


def _extract(doc: Mapping[str, Any], affected: Mapping[str, Any]) -> Advisory:
    ranges = [
        [{k: str(v) for k, v in e.items() if k in EVENT_KINDS} for e in r.get("events", [])]
        for r in affected.get("ranges", [])
        if r.get("type") == "ECOSYSTEM"
    ]
    return Advisory(
        id=str(doc["id"]),
        aliases=sorted(str(a) for a in doc.get("aliases") or []),
        summary=first_line(str(doc.get("summary") or doc.get("details") or "")),
        ranges=ranges,
        versions=[str(v) for v in affected.get("versions") or []],
        fixed=sorted({e["fixed"] for r in ranges for e in r if "fixed" in e}),
    )


def refresh(repo: Path, constraints: Path, out: Path) -> None:
    names = set(read_pins(constraints))
    packages: dict[str, list[Advisory]] = {name: [] for name in names}
    for doc in _read_advisories(repo):
        if doc.get("withdrawn"):
            continue
        for affected in doc.get("affected") or []:
            package = affected.get("package") or {}
            name = normalize(str(package.get("name", "")))
            if package.get("ecosystem") == "PyPI" and name in packages:
                packages[name].append(_extract(doc, affected))
    snapshot = {
        "source": SOURCE,
        "commit": _git(repo, "rev-parse", "HEAD").decode().strip(),
        "date": _git(repo, "log", "-1", "--format=%cI", "HEAD").decode().strip(),
        "license": "CC-BY-4.0",
        "attribution": ATTRIBUTION,
        "packages": {n: sorted(packages[n], key=lambda a: a["id"]) for n in sorted(packages)},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(snapshot, indent=1) + "\n")
    count = sum(len(v) for v in packages.values())
    print(f"wrote {out}: {count} advisories for {len(names)} packages, {_snapshot_label(snapshot)}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--constraints", type=Path, default=CONSTRAINTS)
    parser.add_argument("--advisories", type=Path, default=SNAPSHOT, help="the snapshot")
    parser.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="ID",
        help="accept an advisory (id or alias); repeatable; say why where you pass it",
    )
    parser.add_argument("--offline", action="store_true", help="skip pip-audit, snapshot only")
    parser.add_argument("--service", default="pypi", choices=["pypi", "osv"])
    parser.add_argument(
        "--max-age-days",
        type=int,
        default=None,
        metavar="N",
        help="fail (exit 2) when the offline snapshot is older than N days",
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="pip-audit, seconds")
    parser.add_argument(
        "--refresh",
        type=Path,
        metavar="ADVISORY_DB",
        help="regenerate the snapshot from a clone (or bare git dir) of pypa/advisory-database",
    )
    args = parser.parse_args(argv)
    try:
        if args.refresh is not None:
            refresh(args.refresh, args.constraints, args.advisories)
            return 0
        return audit(args)
    except (AuditError, OSError, subprocess.CalledProcessError) as exc:
        print(f"audit: cannot audit: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
