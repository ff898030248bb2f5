"""Every ``OPTBOT_*`` name that main's flat ``Settings`` knew still sets the same value.

``data/settings_env_main.json`` was recorded from ``git main`` before the settings were
split by domain: for each variable, a non-default value and what ``Settings`` parsed it
to. A name that stopped working (renamed field, nested alias gone wrong) fails here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from shared.settings import Settings, env_name

RECORDED: dict[str, dict[str, Any]] = json.loads(
    (Path(__file__).parent / "data" / "settings_env_main.json").read_text()
)
FIELD_OF_ENV = {env_name(field): field for field in Settings.model_fields}


def test_recorded_names_when_loaded_cover_main_settings() -> None:
    assert len(RECORDED) >= 146


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_env_name_of_main_when_set_gives_the_recorded_value(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv(name, RECORDED[name]["env"])
    assert name in FIELD_OF_ENV, f"{name} no longer names a setting"
    field = FIELD_OF_ENV[name]
    settings = Settings()
    got = getattr(settings, field)
    if isinstance(got, SecretStr):
        got = got.get_secret_value()
    else:
        got = settings.model_dump(mode="json")[field]
    assert got == RECORDED[name]["value"]
