"""Sentinel settings become a client configuration; a bad password file is a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.redis_auth import sentinel_config
from shared.settings import ConfigError, load_settings


def test_sentinel_config_when_sentinels_unset_is_none() -> None:
    assert sentinel_config(load_settings()) is None


def test_sentinel_config_when_set_reads_the_password_file_and_never_shows_it(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "sentinel"
    secret.write_text("s3ntinel-pw-0123456789\n")
    config = sentinel_config(
        load_settings(
            redis_sentinels="s1:26379,s2:26380",
            redis_sentinel_master="prod",
            redis_sentinel_password_file=str(secret),
        )
    )
    assert config is not None
    assert config.addresses == (("s1", 26379), ("s2", 26380))
    assert (config.master, config.username, config.password) == (
        "prod",
        None,
        "s3ntinel-pw-0123456789",
    )
    assert "s3ntinel" not in repr(config)


def test_sentinel_config_when_password_file_missing_names_the_variable(tmp_path: Path) -> None:
    settings = load_settings(
        redis_sentinels="s1:26379", redis_sentinel_password_file=str(tmp_path / "absent")
    )
    with pytest.raises(ConfigError, match="OPTBOT_REDIS_SENTINEL_PASSWORD_FILE"):
        sentinel_config(settings)
