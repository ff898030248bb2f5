"""Bad settings stop start-up with a message that names the variable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shared.settings import ConfigError, Mode, Settings, load_settings


@pytest.mark.parametrize(
    ("env", "variable", "expected"),
    [
        ({"OPTBOT_REDIS_URL": "localhost:6379"}, "OPTBOT_REDIS_URL", "redis://"),
        ({"OPTBOT_REDIS_URL": "redis://"}, "OPTBOT_REDIS_URL", "with a host"),
        ({"OPTBOT_MAXLEN_TICKS": "-5"}, "OPTBOT_MAXLEN_TICKS", "greater than 0"),
        ({"OPTBOT_MAX_DELIVERIES": "0"}, "OPTBOT_MAX_DELIVERIES", "greater than 0"),
        ({"OPTBOT_IB_PORT": "70000"}, "OPTBOT_IB_PORT", "less than or equal to 65535"),
        ({"OPTBOT_MODE": "yolo"}, "OPTBOT_MODE", "'simulated' or 'ib_paper'"),
        ({"OPTBOT_IB_CLIENT_ID": "abc"}, "OPTBOT_IB_CLIENT_ID", "valid integer"),
        ({"OPTBOT_LOG_LEVEL": "LOUD"}, "OPTBOT_LOG_LEVEL", "DEBUG, INFO"),
        ({"OPTBOT_REDIS_ULR": "redis://x:1"}, "OPTBOT_REDIS_ULR", "did you mean OPTBOT_REDIS_URL"),
    ],
)
def test_load_when_value_is_bad_raises_config_error_naming_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], variable: str, expected: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert variable in message and expected in message


def test_load_when_several_values_bad_lists_every_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTBOT_MODE", "nope")
    monkeypatch.setenv("OPTBOT_HEARTBEAT_TTL_S", "-1")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "OPTBOT_MODE" in str(info.value) and "OPTBOT_HEARTBEAT_TTL_S" in str(info.value)


def test_load_when_env_is_valid_parses_types(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTBOT_MODE", "ib_paper")
    monkeypatch.setenv("OPTBOT_IB_PORT", "4002")
    monkeypatch.setenv("OPTBOT_CONTROL_TOKEN", "s3cret-control-token-4b9e1d7a")
    settings = load_settings()
    assert settings.mode is Mode.IB_PAPER and settings.ib_port == 4002
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings.model_dump())


def test_maxlen_when_streams_differ_caps_market_data_short_and_orders_long() -> None:
    settings = load_settings()
    assert settings.maxlen("md:ticks") < settings.maxlen("orders:events")
    assert settings.maxlen("md:ticks:3") == settings.maxlen("md:ticks")


def test_cli_when_setting_bad_exits_2_with_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTBOT_MONITOR_PORT", "http")
    proc = subprocess.run(
        [sys.executable, "-m", "optbot.cli", "config", "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "OPTBOT_MONITOR_PORT='http'" in proc.stderr


def test_load_when_dotenv_has_typo_names_it_and_ignores_foreign_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("TWS_USERID=bob\nOPTBOT_MODE=ib_paper\n")
    assert load_settings().mode is Mode.IB_PAPER  # TWS_USERID belongs to compose
    (tmp_path / ".env").write_text("TWS_USERID=bob\nOPTBOT_MODEE=ib_paper\n")
    with pytest.raises(
        ConfigError, match="OPTBOT_MODEE: unknown setting; did you mean OPTBOT_MODE"
    ):
        load_settings()


CANDIDATES = ("abc", "-1", "maybe", "", "1e400", "999999999999", "bad url", "0")
# Free text by nature: any string is a valid host name, path, label or secret.
FREE_TEXT = {
    "var_dir",
    "instance",
    "ib_host",
    "sim_host",
    "sim_control_host",
    "sim_account",
    "monitor_host",
    "control_token",
    "md_history_duration",
    "redis_username",
    "redis_password_file",
    "redis_secrets_dir",
    "redis_sentinel_username",
    "redis_sentinel_password_file",
}


@pytest.mark.parametrize("field", [f for f in Settings.model_fields if f not in FREE_TEXT])
def test_load_when_any_setting_has_an_invalid_value_names_it(
    monkeypatch: pytest.MonkeyPatch, field: str
) -> None:
    """Every setting that can be wrong stops start-up with a message naming it."""
    name = f"OPTBOT_{field.upper()}"
    for value in CANDIDATES:
        monkeypatch.setenv(name, value)
        try:
            load_settings()
        except ConfigError as exc:
            assert name in str(exc), str(exc)
            return
    pytest.fail(f"no invalid value found for {name}; is it free text? add it to FREE_TEXT")


@pytest.mark.parametrize("name", ["OPTBOT_CONTROL_TOKEN", "OPTBOT_MONITOR_READ_TOKEN"])
def test_load_when_token_shorter_than_24_characters_refuses_and_names_it(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(name, "x" * 23)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert f"{name}=" in str(info.value) and "at least 24 characters" in str(info.value)
    assert "x" * 23 not in str(info.value)  # the secret itself is not echoed
    monkeypatch.setenv(name, "x" * 24)
    assert load_settings()


def test_load_when_trusted_proxies_not_addresses_refuses_and_names_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for bad in ("*", "proxy.local", "10.0.0.1/8"):
        monkeypatch.setenv("OPTBOT_MONITOR_TRUSTED_PROXIES", bad)
        with pytest.raises(ConfigError, match="OPTBOT_MONITOR_TRUSTED_PROXIES"):
            load_settings()
    monkeypatch.setenv("OPTBOT_MONITOR_TRUSTED_PROXIES", " 172.18.0.0/16, ::1 ")
    assert load_settings().monitor_trusted_proxies == "172.18.0.0/16,::1"


def test_redis_sentinels_when_an_address_lacks_a_port_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"OPTBOT_REDIS_SENTINELS.*host:port"):
        load_settings(redis_sentinels="sentinel-1:26379,sentinel-2")
    given = load_settings(redis_sentinels=" a:1 , b:26379,")
    assert given.sentinel_addresses() == [("a", 1), ("b", 26379)]
    assert load_settings().sentinel_addresses() == []  # off by default
