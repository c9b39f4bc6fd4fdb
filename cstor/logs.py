"""How a cstor process writes its log: text for a person at a terminal, or JSON lines
(CSTOR_LOG_FORMAT=json) for compose and Kubernetes, which collect every line as a record.

A JSON line is one object: time, level, service, logger, message, and the migration, packet
and object key it concerns where there is one. Those come from the record (`extra=`) or
from the context of the message being handled (`about`, set by the consumer loop for each
batch), so that every line logged while a migration's event is handled names it.

Secrets are taken out before a record reaches any formatter (`cstor.s3.redaction`
rewrites the message and the traceback of each record): this formatter writes the
record's message and its redacted traceback (`exc_text`) as they are.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]

TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

IDS = ("migration_id", "packet_id", "key")
"""What a line may name that it concerns, in this order."""

_about: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("cstor_log_about")


@contextlib.contextmanager
def about(**ids: object) -> Iterator[None]:
    """Every line logged inside, in this task and the tasks it starts, names these ids
    (those given as None are left out); nested, the inner ones add to the outer."""
    given = {name: str(value) for name, value in ids.items() if value is not None}
    token = _about.set({**_about.get({}), **given})
    try:
        yield
    finally:
        _about.reset(token)


def about_events(events: Sequence[object]) -> contextlib.AbstractContextManager[None]:
    """The ids the events of one batch share: its migration's, and its packet's."""
    ids: dict[str, object] = {}
    for name in ("migration_id", "packet_id"):
        values = {getattr(event, name, None) for event in events}
        if len(values) == 1:
            ids[name] = values.pop()
    return about(**ids)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (a traceback is one field of it)."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = _about.get({})
        for name in IDS:
            value = getattr(record, name, None)
            value = context.get(name) if value is None else value
            if value is not None:
                line[name] = str(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        # ensure_ascii=False: a key is read as it is named; json escapes every newline.
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(log_format: LogFormat = "text", service: str = "cstor") -> None:
    """One log format for every cstor process, to stderr; httpx's line per request is
    left out."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter(TEXT))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Python's warnings, and an error that ends the process, are lines of the log too,
    # not text of their own between JSON lines.
    logging.captureWarnings(True)
    if log_format == "json":
        sys.excepthook = _log_uncaught


def _log_uncaught(kind: type[BaseException], error: BaseException, trace: Any) -> None:
    logging.getLogger("cstor").critical("stopped by an error", exc_info=(kind, error, trace))
