"""Settings by domain: each field and default is declared once, in exactly one domain."""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from services.market_data.momentum import MomentumParams
from services.market_data.sentiment import SentimentParams
from services.strategy.exits import ExitParams
from services.strategy.orders import PricingParams
from services.strategy.risk import RiskLimits
from services.strategy.selection import SelectionParams
from shared.settings import (
    DOMAINS,
    Domain,
    MomentumSettings,
    RiskSettings,
    SentimentSettings,
    Settings,
    StrategySettings,
)

# Each service's parameter class and the one domain model it is built from.
PARAMS: list[tuple[type[Any], type[Domain]]] = [
    (RiskLimits, RiskSettings),
    (SelectionParams, StrategySettings),
    (ExitParams, StrategySettings),
    (PricingParams, StrategySettings),
    (MomentumParams, MomentumSettings),
    (SentimentParams, SentimentSettings),
]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ``OPTBOT_*`` variable and no ``.env``: ``Settings()`` holds the defaults."""
    monkeypatch.chdir(tmp_path)
    for name in os.environ:
        if name.upper().startswith("OPTBOT_"):
            monkeypatch.delenv(name)


def test_fields_when_grouped_belong_to_exactly_one_domain_in_domain_order() -> None:
    declared = Counter(name for model in DOMAINS.values() for name in model.model_fields)
    assert [name for name, n in declared.items() if n > 1] == []
    # a field added to Settings itself, outside every domain, fails here
    assert list(Settings.model_fields) == list(declared)


@pytest.mark.parametrize("key", list(DOMAINS))
def test_domain_when_built_alone_holds_the_defaults_settings_loads(
    clean_env: None, key: str
) -> None:
    model = DOMAINS[key]
    alone = model()
    loaded = getattr(Settings(), key)
    assert type(loaded) is model
    assert loaded == alone


def test_accessor_when_a_value_is_set_returns_it_typed(clean_env: None) -> None:
    risk = Settings(risk_max_positions=7).risk
    assert isinstance(risk, RiskSettings) and risk.risk_max_positions == 7
    with pytest.raises(ValidationError):  # frozen, like Settings
        risk.risk_max_positions = 8


@pytest.mark.parametrize(
    ("model", "values"),
    [
        (RiskSettings, {"risk_max_positions": 0}),
        (StrategySettings, {"strat_min_dte": 30, "strat_max_dte": 20}),
        (MomentumSettings, {"no_such_setting": 1}),
    ],
)
def test_domain_when_value_bad_refuses_like_settings(
    model: type[Domain], values: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError):
        model(**values)


@pytest.mark.parametrize(("params", "domain"), PARAMS)
def test_param_class_when_declared_states_no_default_of_its_own(
    params: type[Any], domain: type[Domain]
) -> None:
    own = [
        f.name
        for f in dataclasses.fields(params)
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    ]
    assert own == [], f"{params.__name__} restates defaults of {domain.__name__}: {own}"


@pytest.mark.parametrize(("params", "domain"), PARAMS)
def test_param_class_when_built_from_domain_or_settings_agrees(
    clean_env: None, params: type[Any], domain: type[Domain]
) -> None:
    from_domain = params.from_settings(domain())
    assert params.from_settings(Settings()) == from_domain
