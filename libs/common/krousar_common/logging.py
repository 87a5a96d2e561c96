"""structlog set up once per process: JSON lines (console when on a TTY), correlation id bound
per request or per consumed message through contextvars.

Nothing personal may leave the process in a log line or a dead-letter header: ``describe_error``
renders an exception without the input it failed on, and the ``_redact`` processor is the backstop
for whatever text is logged anyway.
"""

import json
import logging
import re
import sys

import asyncpg
import structlog
from aiokafka.errors import KafkaError
from pydantic import ValidationError

# Keys that must never reach a log line, whatever a caller binds (HIV status is legally sensitive).
REDACTED_KEYS = frozenset({"lives_with_hiv", "national_id", "name_km", "name_latin", "password", "token"})
REDACTED = "[redacted]"
# Pydantic quotes the offending input (a whole member, HIV status included) in its error text.
_PYDANTIC_INPUT = re.compile(r"input_value=.*?, input_type=")
# A sensitive key's value in a dict, JSON or keyword rendered as text: 'lives_with_hiv': True,
# "national_id": "…", name_km='…'.
_KEYS = "|".join(sorted(REDACTED_KEYS))
_SENSITIVE_VALUE = re.compile(
    rf"""((?:['"](?:{_KEYS})['"]\s*:|\b(?:{_KEYS})=)\s*)('[^']*'|"[^"]*"|[^,}}\])\s]+)"""
)


def scrub(text: str) -> str:
    text = _PYDANTIC_INPUT.sub(f"input_value={REDACTED}, input_type=", text)
    return _SENSITIVE_VALUE.sub(rf"\1{REDACTED}", text)


def describe_error(exc: BaseException) -> str:
    """What went wrong and where, never the data it went wrong on: for logs and DLQ headers.

    Validation and database errors are reduced to locations, messages and codes (their text quotes
    the input); errors of a connection keep their text, which is about the connection; any other
    exception is named only, since its message may be anything.
    """
    name = type(exc).__name__
    if isinstance(exc, ValidationError):
        problems = exc.errors(include_url=False, include_context=False, include_input=False)
        found = "; ".join(f"{_location(p['loc'])}: {p['msg']} [{p['type']}]" for p in problems)
        return f"{len(problems)} validation error(s) for {exc.title}: {found}"
    if isinstance(exc, asyncpg.PostgresError):
        names = ("table_name", "column_name", "constraint_name")
        where = "".join(f" {n}={getattr(exc, n)}" for n in names if getattr(exc, n, None))
        return f"{name} (SQLSTATE {exc.sqlstate}){where}"
    if isinstance(exc, json.JSONDecodeError):
        return f"{name}: {exc.msg} (line {exc.lineno} column {exc.colno})"
    if isinstance(exc, (OSError, KafkaError, asyncpg.InterfaceError)):
        return f"{name}: {exc}"
    return name


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(map(str, loc)) or "(root)"


def _redact(_: object, __: str, event: dict) -> dict:
    for key, value in event.items():
        if key in REDACTED_KEYS:
            event[key] = REDACTED
        elif isinstance(value, str):
            event[key] = scrub(value)
    return event


def configure_logging(service: str, level: str = "info") -> None:
    renderer = structlog.dev.ConsoleRenderer() if sys.stderr.isatty() else structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _redact,  # after the traceback is text: a traceback quotes input too
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
