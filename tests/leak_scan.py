"""Everything a test can read back from Postgres, NATS and the services' logs, as text,
to search for secrets."""

from __future__ import annotations

import json
from pathlib import Path

import nats
import psycopg
from psycopg import sql

LOG_FORMATS = ("text", "json")
"""Each CSTOR_LOG_FORMAT: a test parametrized on the `log_format` fixture runs with both."""


def every_log_as_text(data_dir: Path, log_format: str = "text") -> str:
    """Every service's log under `data_dir`; JSON lines (each must be one, or the test
    fails) with their fields decoded too, so that no escape can hide what they hold."""
    texts = []
    for path in sorted((data_dir / "logs").glob("*.log")):
        text = path.read_text(errors="replace")
        texts.append(text)
        if log_format == "json":
            for line in text.splitlines():
                try:
                    fields = json.loads(line)
                except ValueError:
                    raise AssertionError(f"{path.name}: not a JSON line: {line!r}") from None
                assert isinstance(fields, dict), (path.name, line)
                texts += map(str, fields.values())
    return "\n".join(texts)


def every_row_as_text(database_url: str) -> str:
    """Each row of each table of the database, as Postgres prints it."""
    with psycopg.connect(database_url) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        ]
        texts = []
        for table in tables:
            query = sql.SQL("SELECT t::text FROM {} AS t").format(sql.Identifier(table))
            texts += [row[0] for row in conn.execute(query).fetchall()]
    assert any("cstor_events" in table for table in tables), tables
    return "\n".join(texts)


async def every_stream_message(nats_url: str, stream: str) -> bytes:
    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        info = await js.stream_info(stream)
        messages = [
            await js.get_msg(stream, seq)
            for seq in range(info.state.first_seq, info.state.last_seq + 1)
        ]
    finally:
        await client.close()
    assert messages, "the stream holds no events"
    return b"\n".join((m.data or b"") + repr(m.headers).encode() for m in messages)
