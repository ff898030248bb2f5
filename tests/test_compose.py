"""docker-compose.yml and Dockerfile, checked offline (no Docker engine here).

Debian's docker-compose 1.29 validates the Compose Specification file, profiles and
health-check conditions without an engine; the rest is compared with the code:
compose must start exactly what `optbot up` starts, with known settings only.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from optbot.registry import SERVICES, services_for
from shared.settings import ConfigError, Settings, env_name, load_settings

ROOT = Path(__file__).parent.parent
HA_NODES = {"redis-replica", "sentinel-1", "sentinel-2", "sentinel-3"}  # profile ha
REDIS_NODES = {"redis", *HA_NODES}
INFRA = {*REDIS_NODES, "ib-gateway"}  # not optbot services


def _compose(*args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail(
            "docker-compose missing: `make test` installs it (scripts/ensure-test-tools.sh)"
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTBOT_")} | extra_env
    return subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    proc = _compose("--profile", "live", "config")
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(proc.stdout)


@pytest.mark.parametrize(
    "profile",
    [[], ["--profile", "live"], ["--profile", "ha"]],
    ids=["default", "live", "ha"],
)
def test_compose_when_validated_offline_is_valid(profile: list[str]) -> None:
    proc = _compose(*profile, "config", "-q")
    assert proc.returncode == 0, proc.stderr


def test_compose_when_no_profile_starts_what_optbot_up_starts(resolved: dict[str, Any]) -> None:
    # compose 1.29 lists profiled services too; the default set is those without profiles
    default = {n for n, svc in resolved["services"].items() if not svc.get("profiles")}
    expected = {s.name.replace("_", "-") for s in services_for(load_settings())}
    assert default - {"redis"} == expected


def test_compose_when_ha_profile_adds_a_replica_and_three_sentinels_only(
    resolved: dict[str, Any],
) -> None:
    services = resolved["services"]
    assert {n for n, svc in services.items() if svc.get("profiles") == ["ha"]} == HA_NODES
    replica = " ".join(services["redis-replica"]["command"])
    assert "--replicaof redis 6379" in replica and "--appendonly yes" in replica
    assert "masterauth" not in replica.split("exec", 1)[1]  # the password stays in a file
    for n in ("sentinel-1", "sentinel-2", "sentinel-3"):
        script = services[n]["command"][2]
        assert "sentinel monitor optbot redis 6379 2" in script, n
        assert "redis-sentinel" in [s["source"] for s in services[n]["secrets"]], n
        assert services[n]["environment"]["SENTINEL_NAME"] == n
    assert load_settings().redis_sentinel_master == "optbot"  # what the sentinels monitor
    sentinels = {
        s["environment"]["OPTBOT_REDIS_SENTINELS"] for n, s in services.items() if n not in INFRA
    }
    assert sentinels == {""}  # off unless the operator sets it (docs/redis-failover.md)


def test_compose_when_live_profile_adds_ib_gateway_in_paper_mode(resolved: dict[str, Any]) -> None:
    gateway = resolved["services"]["ib-gateway"]
    assert gateway["image"].startswith("ghcr.io/gnzsnz/ib-gateway")
    assert gateway["environment"]["TRADING_MODE"] == "paper"
    assert "TWS_USERID" in gateway["environment"]


def test_compose_when_live_ib_password_comes_only_from_a_secret_file(
    resolved: dict[str, Any],
) -> None:
    gateway = resolved["services"]["ib-gateway"]
    env = gateway["environment"]
    assert env["TWS_PASSWORD_FILE"] == "/run/secrets/ib_password"
    assert [s["source"] if isinstance(s, dict) else s for s in gateway["secrets"]] == [
        "ib_password"
    ]
    assert resolved["secrets"]["ib_password"]["file"].endswith("/secrets/ib_password")
    for name, svc in resolved["services"].items():
        names = set(svc.get("environment") or {})
        assert not {"TWS_PASSWORD", "OPTBOT_IB_PASSWORD"} & names, name
        if name != "ib-gateway":
            sources = [s["source"] if isinstance(s, dict) else s for s in svc.get("secrets", [])]
            assert "ib_password" not in sources, f"{name} gets the IB password"
    ignored = (ROOT / "secrets" / ".gitignore").read_text().split()
    assert "*" in ignored and ".gitignore" in "".join(ignored)  # the file is never committed
    assert "secrets" in (ROOT / ".dockerignore").read_text().split()  # nor baked in


def test_compose_when_secret_file_moved_uses_ib_password_file() -> None:
    proc = _compose("--profile", "live", "config", IB_PASSWORD_FILE="/etc/optbot/ib_pw")
    assert proc.returncode == 0, proc.stderr
    assert yaml.safe_load(proc.stdout)["secrets"]["ib_password"]["file"] == "/etc/optbot/ib_pw"


def test_compose_when_services_run_they_drop_privileges_and_write_only_to_tmpfs(
    resolved: dict[str, Any],
) -> None:
    for name, svc in resolved["services"].items():
        if name in REDIS_NODES:
            continue  # the Redis image's entrypoint drops to its redis user itself
        assert "no-new-privileges:true" in svc["security_opt"], name
        assert svc["cap_drop"] == ["ALL"], name
        if name in INFRA:
            continue  # the gateway image writes its config at start
        assert svc["read_only"] is True, name
        assert {"/tmp", "/var/lib/optbot"} <= set(svc["tmpfs"]), name


def test_compose_when_images_named_are_pinned_to_exact_versions(resolved: dict[str, Any]) -> None:
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert version
    for name, svc in resolved["services"].items():
        image = svc["image"]
        tag = image.rpartition(":")[2]
        assert tag not in ("latest", "stable", "") and re.search(r"\d+\.\d+\.\d+", tag), image
        if name not in INFRA:
            assert image == f"optbot:{version.group(1)}", name


def test_compose_when_digest_given_pins_images_to_it() -> None:
    digest = "sha256:" + "ab" * 32
    proc = _compose(
        "--profile",
        "live",
        "config",
        REDIS_IMAGE=f"redis:7.2.7-alpine@{digest}",
        IB_GATEWAY_IMAGE=f"ghcr.io/gnzsnz/ib-gateway:10.37.1n@{digest}",
    )
    assert proc.returncode == 0, proc.stderr
    services = yaml.safe_load(proc.stdout)["services"]
    assert services["redis"]["image"].endswith(f"@{digest}")
    assert services["ib-gateway"]["image"].endswith(f"@{digest}")
    deployment = (ROOT / "docs" / "deployment.md").read_text()
    assert "REDIS_IMAGE=" in deployment and "@sha256:" in deployment


def test_compose_when_simulator_runs_its_control_port_is_neither_published_nor_exposed(
    resolved: dict[str, Any],
) -> None:
    sim = resolved["services"]["tws-simulator"]
    assert not sim.get("ports") and not sim.get("expose")
    assert "OPTBOT_SIM_CONTROL_HOST" not in sim["environment"]  # stays on its loopback
    exposed = re.findall(r"^EXPOSE (.+)$", DOCKERFILE, re.M)
    assert exposed and sim["environment"]["OPTBOT_SIM_CONTROL_PORT"] not in exposed[0].split()


def test_compose_when_service_runs_optbot_command_is_a_run_target(resolved: dict[str, Any]) -> None:
    targets = {s.name for s in SERVICES}
    for name, svc in resolved["services"].items():
        if name in INFRA:
            continue
        assert svc["command"][0] == "run" and svc["command"][1] in targets, name
        assert svc["command"][1].replace("_", "-") == name


def test_compose_when_environment_set_uses_only_valid_settings(
    resolved: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    known = {env_name(f) for f in Settings.model_fields}
    for name, svc in resolved["services"].items():
        if name in INFRA:
            continue
        env = {k: str(v) for k, v in (svc.get("environment") or {}).items()}
        assert set(env) <= known, f"{name}: unknown {set(env) - known}"
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        try:
            load_settings()
        except ConfigError as exc:  # pragma: no cover - the assertion message is the point
            pytest.fail(f"{name}: {exc}")
        for key in env:
            monkeypatch.delenv(key)


def test_compose_when_depends_on_targets_have_health_checks(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    for name, svc in services.items():
        for target, rule in (svc.get("depends_on") or {}).items():
            assert rule["condition"] == "service_healthy", (name, target)
            assert "healthcheck" in services[target], f"{name} waits on {target} without a check"
        if name not in INFRA:
            assert svc["healthcheck"]["test"][1:3] == ["optbot", "health"], name


def _port(spec: str | dict[str, Any]) -> tuple[str, int, int]:
    """(host ip, published, target) of a long-form port or a short ``ip:pub:target``."""
    if isinstance(spec, dict):
        return spec.get("host_ip", "0.0.0.0"), int(spec["published"]), int(spec["target"])
    parts = spec.split("/")[0].split(":")
    ip = parts[0] if len(parts) == 3 else "0.0.0.0"
    return ip, int(parts[-2]), int(parts[-1])


def test_compose_when_ports_published_only_the_dashboard_on_host_loopback(
    resolved: dict[str, Any],
) -> None:
    published = {
        (name, *_port(p))
        for name, svc in resolved["services"].items()
        for p in svc.get("ports", [])
    }
    assert published == {("monitor", "127.0.0.1", 5001, 5001)}, published
    monitor = resolved["services"]["monitor"]["environment"]
    assert {"OPTBOT_MONITOR_READ_TOKEN", "OPTBOT_MONITOR_TRUSTED_PROXIES"} <= set(monitor)
    readme = (ROOT / "README.md").read_text()
    assert "http://localhost:5001" in readme and "docker compose --profile live up" in readme
    deployment = (ROOT / "docs" / "deployment.md").read_text()
    assert "reverse proxy" in deployment and "X-Forwarded-Proto" in deployment


def test_compose_when_redis_configured_persists_with_aof(resolved: dict[str, Any]) -> None:
    redis = resolved["services"]["redis"]
    assert "--appendonly" in redis["command"] and "yes" in redis["command"]
    mounts = [v if isinstance(v, str) else f"{v['source']}:{v['target']}" for v in redis["volumes"]]
    assert any(m.startswith("redis-data:/data") for m in mounts), mounts
    assert "redis-data" in resolved["volumes"]
    assert "ports" not in redis


DOCKERFILE = (ROOT / "Dockerfile").read_text()


def test_dockerfile_when_linted_by_hadolint_has_no_findings() -> None:
    binary = shutil.which("hadolint") or str(Path(os.sys.executable).parent / "hadolint")  # type: ignore[attr-defined]
    proc = subprocess.run(
        [binary, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_when_built_runs_as_non_root_from_a_pinned_base() -> None:
    assert re.search(r"ARG PYTHON_IMAGE=python:\d+\.\d+\.\d+-slim", DOCKERFILE), "pin the base"
    assert len(re.findall(r"^FROM ", DOCKERFILE, re.M)) == 2, "multi-stage"
    final = DOCKERFILE.split("\nFROM ")[-1]
    user = re.findall(r"^USER (\S+)", final, re.M)
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert "HEALTHCHECK" in final and '"optbot", "health"' in final
    assert "gcc" not in final and "build-essential" not in final
    assert "-c constraints.txt" in DOCKERFILE


def test_dockerfile_when_read_has_no_secrets() -> None:
    for line in DOCKERFILE.splitlines():
        if line.strip().startswith(("ENV", "ARG")):
            assert not re.search(r"PASSWORD|TOKEN|SECRET|TWS_USERID", line), line
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".env" in ignored and ".git" in ignored
