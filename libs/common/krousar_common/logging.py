"""structlog set up once per process: JSON lines (console when on a TTY), correlation id bound
per request or per consumed message through contextvars."""

import logging
import sys

import structlog

# Keys that must never reach a log line, whatever a caller binds (HIV status is legally sensitive).
REDACTED_KEYS = frozenset({"lives_with_hiv", "national_id", "name_km", "name_latin", "password", "token"})


def _redact(_: object, __: str, event: dict) -> dict:
    for key in REDACTED_KEYS & event.keys():
        event[key] = "[redacted]"
    return event


def configure_logging(service: str, level: str = "info") -> None:
    renderer = structlog.dev.ConsoleRenderer() if sys.stderr.isatty() else structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)
