"""CSTOR_LOG_FORMAT=json: one JSON object per line, naming what the line concerns."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
import warnings
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from cstor import logs
from cstor.s3.redaction import HIDDEN, redact_logs

MIGRATION = UUID("00000000-0000-0000-0000-0000000000aa")
PACKET = UUID("00000000-0000-0000-0000-0000000000bb")


@pytest.fixture
def lines() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing through the JSON formatter into a buffer."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.JsonFormatter("transfer"))
    logger = logging.getLogger("tests.json")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, out
    logger.removeHandler(handler)


def read(out: io.StringIO) -> list[dict[str, Any]]:
    text = out.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_a_line_is_one_object_with_time_level_service_and_message(
    lines: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = lines
    # When a line is logged with its arguments
    logger.warning("copy of %r failed after %d attempt(s)", "a", 3)
    # Then it is one object with the formatted message
    [line] = read(out)
    assert line["level"] == "WARNING"
    assert line["service"] == "transfer"
    assert line["logger"] == "tests.json"
    assert line["message"] == "copy of 'a' failed after 3 attempt(s)"
    assert line["time"].endswith("+00:00")  # ISO 8601, in UTC
    assert "migration_id" not in line  # nothing to name


def test_a_traceback_is_one_field_and_the_line_stays_one_line(
    lines: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = lines
    # Given an error with a chain, on several lines
    try:
        try:
            raise KeyError("inner")
        except KeyError as error:
            raise RuntimeError("outer\nsecond line") from error
    except RuntimeError:
        # When it is logged with its traceback
        logger.exception("handling failed")
    # Then the whole of it is one line, the traceback one field
    assert out.getvalue().count("\n") == 1
    [line] = read(out)
    assert line["message"] == "handling failed"
    assert "Traceback" in line["exception"]
    assert "KeyError: 'inner'" in line["exception"]
    assert "RuntimeError: outer\nsecond line" in line["exception"]


def test_a_traceback_is_written_as_redacted(lines: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = lines
    redact_logs()  # as importing cstor.s3 does in every service
    signed = "http://s3:9000/b/k?X-Amz-Signature=abcdef&X-Amz-Credential=AKIA/2026"
    # When a library's error quoting a signed URL is logged with its chain
    try:
        raise ConnectionError(f"cannot reach {signed}")
    except ConnectionError:
        logger.exception("fetching %s failed", signed)
    # Then neither the message nor the traceback carries the signature
    text = out.getvalue()
    assert "abcdef" not in text
    assert "AKIA" not in text
    [line] = read(out)
    assert line["message"] == "fetching http://s3:9000/b/k failed"
    assert "cannot reach http://s3:9000/b/k" in line["exception"]
    assert HIDDEN not in line["message"]


def test_ids_come_from_the_message_being_handled(
    lines: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = lines

    class Event:
        migration_id = MIGRATION
        packet_id = PACKET

    async def handle() -> None:
        logger.info("in the handler")
        await asyncio.create_task(in_a_task())

    async def in_a_task() -> None:
        logger.info("in a task it started", extra={"key": "photos/1.jpg"})

    # When lines are logged while a batch of one migration's packet is handled
    async def consumer() -> None:
        with logs.about_events([Event(), Event()]):
            await handle()
        logger.info("after it")

    asyncio.run(consumer())
    # Then those lines name the migration and the packet, and a key given with the line
    inside, task, after = read(out)
    assert inside["migration_id"] == task["migration_id"] == str(MIGRATION)
    assert inside["packet_id"] == task["packet_id"] == str(PACKET)
    assert task["key"] == "photos/1.jpg"
    assert "key" not in inside
    assert "migration_id" not in after


def test_a_batch_of_several_migrations_names_none(
    lines: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = lines

    class Event:
        def __init__(self, migration_id: UUID) -> None:
            self.migration_id = migration_id

    with logs.about_events([Event(MIGRATION), Event(PACKET)]):
        logger.info("projecting")
    [line] = read(out)
    assert "migration_id" not in line
    assert "packet_id" not in line


def test_a_line_given_its_own_migration_keeps_it(
    lines: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = lines
    with logs.about(migration_id=PACKET):
        logger.info("completed", extra={"migration_id": MIGRATION})
    [line] = read(out)
    assert line["migration_id"] == str(MIGRATION)


def test_a_non_ascii_key_is_written_as_it_is(lines: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = lines
    key = 'données/été "2026"\\ü.txt'
    logger.warning("copy of %s failed", key, extra={"key": key})
    assert "données/été" in out.getvalue()  # readable, not \\u-escaped
    [line] = read(out)
    assert line["key"] == key
    assert line["message"] == f"copy of {key} failed"


def test_text_stays_the_default_format(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    before = root.handlers[:], root.level
    try:
        # When a process configures its logging as text, then as JSON
        logs.configure("text", "planner")
        logging.getLogger("cstor.x").info("hello %s", "there")
        logs.configure("json", "planner")
        logging.getLogger("cstor.x").info("hello %s", "again")
    finally:
        root.handlers[:] = before[0]
        root.setLevel(before[1])
        logging.captureWarnings(False)
    text, json_line = capsys.readouterr().err.splitlines()
    assert text.endswith(" INFO cstor.x: hello there")
    assert json.loads(json_line)["message"] == "hello again"
    assert json.loads(json_line)["service"] == "planner"


def test_warnings_and_an_error_that_ends_the_process_are_json_lines_too(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    before = root.handlers[:], root.level, sys.excepthook
    try:
        logs.configure("json", "api")
        # When a library warns, and an error ends the process
        warnings.warn("deprecated thing", UserWarning, stacklevel=1)
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            sys.excepthook(*sys.exc_info())
    finally:
        root.handlers[:] = before[0]
        root.setLevel(before[1])
        sys.excepthook = before[2]
        logging.captureWarnings(False)
    # Then each is one JSON line
    warned, ended = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert "deprecated thing" in warned["message"]
    assert warned["level"] == "WARNING"
    assert ended["level"] == "CRITICAL"
    assert "RuntimeError: boom" in ended["exception"]
