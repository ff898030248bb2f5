"""The README keeps up with the code: every setting and command is documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from optbot.cli import app
from shared.contract import ALL_STREAMS
from shared.settings import Settings, env_name

README = (Path(__file__).parent.parent / "README.md").read_text()


@pytest.mark.parametrize("field", list(Settings.model_fields))
def test_readme_when_setting_exists_documents_it(field: str) -> None:
    assert f"`{env_name(field)}`" in README


@pytest.mark.parametrize(
    "command", [c.name or c.callback.__name__ for c in app.registered_commands]
)  # type: ignore[union-attr]
def test_readme_when_command_exists_documents_it(command: str) -> None:
    assert f"`optbot {command}" in README


@pytest.mark.parametrize("stream", ALL_STREAMS)
def test_readme_when_stream_exists_documents_it(stream: str) -> None:
    assert f"| `{stream}` |" in README


def test_readme_config_table_when_generated_matches_settings_model() -> None:
    from shared.settings_doc import config_table, table_in

    assert table_in(README) == config_table(), "run: python -m shared.settings_doc"


def test_readme_contract_table_when_generated_matches_contract() -> None:
    from shared.contract.doc import contract_table, table_in

    assert table_in(README) == contract_table(), "run: python -m shared.contract.doc README.md"
