"""Everything a test can read back from Postgres and NATS, as text, to search for secrets."""

from __future__ import annotations

import nats
import psycopg
from psycopg import sql


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
