"""Logging for the server: one stderr handler, text on a terminal or JSON lines, request ids in all.

Every record gets the ``request_id`` of the request it was logged under (a context variable
set by the request middleware, so it follows the request into worker threads). JSON lines are
made by :class:`JsonLines` (the standard fields, then what the call put in ``extra``, through
``json.dumps``): python-json-logger, tried first, walks every attribute of every record; with the
write, a line cost 17 µs through it and 14 µs here, which the access log pays per request
(bench/observability.py, bench/README.md).
The text form is for people at a terminal.

Lines are written as they are logged. A logging thread (stdlib ``QueueListener``) was measured
and cost more, not less: it contends for the GIL with the event loop (bench/observability.py).
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["auto", "text", "json"]

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_HANDLER_NAME = "assetfiles"


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get() or "-"
        return True


#: Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id"}


#: ``json.dumps(..., default=str)`` builds an encoder per call; one is enough.
_ENCODER = json.JSONEncoder(default=str)


class JsonLines(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, request_id, extras."""

    def __init__(self) -> None:
        super().__init__()
        #: (a second, its date and time of day), replaced as one value so threads never mix them
        self._second: tuple[int, str] = (-1, "")

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self._time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _ENCODER.encode(entry)

    def _time(self, created: float) -> str:
        """``2026-12-04T14:35:41.123+00:00``; the date and time of day are made once a second."""
        second = int(created)
        cached, text = self._second
        if second != cached:
            text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = (second, text)
        return f"{text}.{int((created - second) * 1000):03d}+00:00"


def log_with_fields(
    logger: logging.Logger, level: int, message: str, args: tuple[Any, ...], fields: dict[str, Any]
) -> None:
    """``logger.log(level, message, *args, extra=fields)`` for a line logged on every request:
    the record is handed to the handlers as ``logging`` would hand it, without the lookup of the
    calling source line (a walk up the stack no line prints) and the copy of ``extra`` key by key."""
    if not logger.isEnabledFor(level):
        return
    record = logging.LogRecord(logger.name, level, "", 0, message, args, None)
    record.__dict__.update(fields)
    logger.handle(record)


def _formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonLines()
    return logging.Formatter("%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s")


def configure_logging(level: str = "info", log_format: LogFormat = "auto") -> None:
    """Install (or replace) assetfiles' handler on the root logger; idempotent."""
    if log_format == "auto":
        log_format = "text" if sys.stderr.isatty() else "json"
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(_formatter(log_format))
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == _HANDLER_NAME:
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
