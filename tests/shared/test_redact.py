"""Redis passwords masked in every form redis-py accepts, in URLs, text and log lines."""

from __future__ import annotations

import json
import logging

import pytest

from optbot.cli import banner
from shared.logs import configure_logging, get_logger
from shared.redact import redact_text, redact_url
from shared.settings import ConfigError, load_settings

PW = "hunter2-S3CR3T"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"redis://:{PW}@redis:6379/0", "redis://:***@redis:6379/0"),
        (f"redis://strategy:{PW}@redis:6379/0", "redis://strategy:***@redis:6379/0"),
        (f"rediss://u:{PW}@h:6380/1", "rediss://u:***@h:6380/1"),
        (f"redis://redis:6379/0?password={PW}", "redis://redis:6379/0?password=***"),
        (
            f"redis://redis:6379/0?db=2&password={PW}&socket_timeout=3",
            "redis://redis:6379/0?db=2&password=***&socket_timeout=3",
        ),
        (f"redis://u@h:6379/0?PassWord={PW}", "redis://u@h:6379/0?PassWord=***"),
        (f"unix:///run/redis.sock?db=0&password={PW}", "unix:///run/redis.sock?db=0&password=***"),
        (f"redis://:{PW}/x@h:6379/0", "redis://:***@h:6379/0"),  # unescaped / and @
        (f"redis://u:{PW}@x@h:6379/0", "redis://u:***@h:6379/0"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://strategy@h:6379/0", "redis://strategy@h:6379/0"),  # a user, no password
    ],
)
def test_redact_url_when_password_in_any_form_masks_it(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_text_when_urls_inside_a_message_masks_each() -> None:
    text = f"no Redis at redis://:{PW}@a:1/0 nor 'redis://b:2/0?password={PW}'; password={PW}"
    out = redact_text(text)
    assert PW not in out
    assert out == ("no Redis at redis://:***@a:1/0 nor 'redis://b:2/0?password=***'; password=***")
    assert redact_text("plain words, no secret") == "plain words, no secret"


def test_log_line_when_event_or_traceback_holds_a_redis_url_has_no_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", "json")
    try:
        get_logger("optbot.test.redact").warning(
            "redis_failed", url=f"redis://u:{PW}@h:1/0", error=f"connect ?password={PW}"
        )
        try:
            raise ConnectionError(f"cannot reach redis://h:1/0?password={PW}")
        except ConnectionError:
            logging.getLogger("some.library").exception("failed on redis://:%s@h:1/0", PW)
    finally:
        logging.getLogger().handlers.clear()
    err = capsys.readouterr().err
    lines = [json.loads(line) for line in err.splitlines()]
    assert len(lines) == 2 and PW not in err
    assert lines[0]["url"] == "redis://u:***@h:1/0"
    assert "redis://h:1/0?password=***" in lines[1]["exception"]
    assert lines[1]["event"] == "failed on redis://:***@h:1/0"


def test_up_banner_when_url_has_query_password_masks_it() -> None:
    settings = load_settings()
    text = banner(settings, f"redis://h:6379/0?password={PW}", "url", ["monitor"])
    assert PW not in text and "redis:     redis://h:6379/0?password=*** (url)" in text


def test_settings_error_when_url_invalid_masks_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPTBOT_REDIS_URL", f"http://h/?password={PW}")
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert "OPTBOT_REDIS_URL='http://h/?password=***'" in str(exc.value)
    assert PW not in str(exc.value)


def test_load_when_removed_ib_password_set_says_where_ib_credentials_live(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPTBOT_IB_PASSWORD", PW)
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert "OPTBOT_IB_PASSWORD: removed" in str(exc.value) and "ib_password" in str(exc.value)
    assert PW not in str(exc.value)
