"""A migration's report: every object's final status, size, checksum and error, as CSV
or JSON, streamed from the read model a page at a time (never whole in memory).

Keys and error messages come from whoever named the objects, and a spreadsheet runs a
cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return as a formula
(CSV injection). The CSV puts a ``'`` before such a text cell, as OWASP advises, so it
opens as the text it is; the JSON, read by programs, keeps every value exact.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from uuid import UUID

import asyncpg
import msgspec
from litestar import Controller, get
from litestar.di import Provide
from litestar.response import Stream

from cstor.readmodel import queries
from cstor.readmodel.records import ObjectReport
from services.api.deps import Services, provide_owner
from services.api.migrations.commands import get_migration

COLUMNS = ObjectReport.__struct_fields__  # key, status, ..., attempts, updated_at
ROWS_PER_FETCH = 1000
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # OWASP's list, "CSV Injection"
_json = msgspec.json.Encoder()


def spreadsheet_cell(value: object) -> object:
    """A text a spreadsheet would run as a formula, with a ``'`` before it so it shows as
    text; anything else (numbers, other text) as it is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_row(row: ObjectReport) -> list[object]:
    """One object's line of the CSV, every text cell safe to open in a spreadsheet."""
    cells = (getattr(row, column) for column in COLUMNS)
    return [c.isoformat() if isinstance(c, datetime) else spreadsheet_cell(c) for c in cells]


async def csv_report(pool: asyncpg.Pool, migration_id: UUID) -> AsyncIterator[bytes]:
    """A header line, then one line per object, written a fetch at a time."""
    buffer = io.StringIO()
    # RFC 4180's CRLF: the writer quotes a cell holding any character of the line ending,
    # and with "\n" alone a key with a carriage return in it broke its line in two.
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    async for rows in queries.report(pool, migration_id, ROWS_PER_FETCH):
        writer.writerows(csv_row(row) for row in rows)
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


async def json_report(pool: asyncpg.Pool, migration_id: UUID) -> AsyncIterator[bytes]:
    """A JSON array of objects, written element by element."""
    yield b"["
    first = True
    async for rows in queries.report(pool, migration_id, ROWS_PER_FETCH):
        chunk = bytearray()
        for row in rows:
            if not first:
                chunk += b","
            first = False
            chunk += _json.encode(row)  # its fields are COLUMNS, in order
        yield bytes(chunk)
    yield b"]\n"


class ReportController(Controller):
    """Download what happened to every object of a migration."""

    path = "/api/v1/migrations/{migration_id:uuid}"
    tags = ["migrations"]
    dependencies = {"owner": Provide(provide_owner)}

    @get(
        "/report.csv",
        summary="Every object's final status, size, checksum and error, as CSV",
        media_type="text/csv; charset=utf-8",
    )
    async def csv(self, services: Services, owner: str, migration_id: UUID) -> Stream:
        await get_migration(services, owner, migration_id)  # 404 unless it is theirs
        return Stream(
            csv_report(services.read_models.pool, migration_id),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": _attachment(migration_id, "csv")},
        )

    @get(
        "/report.json",
        summary="Every object's final status, size, checksum and error, as a JSON array",
        media_type="application/json",
    )
    async def json(self, services: Services, owner: str, migration_id: UUID) -> Stream:
        await get_migration(services, owner, migration_id)
        return Stream(
            json_report(services.read_models.pool, migration_id),
            media_type="application/json",
            headers={"Content-Disposition": _attachment(migration_id, "json")},
        )


def _attachment(migration_id: UUID, extension: str) -> str:
    return f'attachment; filename="cstor-{migration_id}.{extension}"'
