"""Structured logging: one line per event, JSON by default, for ours and ib_async's.

Our code logs with structlog (``log.info("event_name", key=value)``); records from
other libraries (ib_async, uvicorn, asyncio) go through the same renderer, so a
service's output is one consistent stream of single-line events.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from shared.redact import redact_text

_configured = False


def redact_secrets(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    """Mask passwords in every string of the event (URLs, ``password=``), tracebacks too."""
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = redact_text(value)
    return event


def _processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_secrets,
    ]


def configure_logging(level: str = "INFO", fmt: str = "json", service: str = "") -> None:
    """Route structlog and stdlib logging to stderr as single-line events."""
    global _configured
    renderer: Any
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    else:
        renderer = structlog.processors.JSONRenderer()
    shared_processors = _processors()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared_processors,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    structlog.configure(
        processors=[*shared_processors, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    if service:
        structlog.contextvars.bind_contextvars(service=service)
    _configured = True


def get_logger(name: str) -> Any:
    """A structlog logger named ``name`` (e.g. ``optbot.bus``)."""
    return structlog.get_logger(name)
