"""The api killed mid-migration: the planner's standby relay takes the lock and publishes
what is recorded afterwards, each event once, and the migration completes."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable

import nats
import psycopg
import pytest

from cstor import contracts
from cstor.store import locks
from launcher.embedded import EmbeddedS3
from tests.stack import RunningCstor, s3_client_for
from tests.stored_events import recorded

OBJECTS = 100
TAKEOVER = 10.0
"""Seconds the stream may lag the store after the active relay's process is killed."""

# One api process (its relay in that process) and packets of 10: copying goes on after the kill.
pytestmark = pytest.mark.stack(api_workers=1, packet_max_objects=10, transfer_concurrency=2)


def test_standby_relay_publishes_once_each_after_the_api_is_killed(
    cstor: RunningCstor,
    database_url: str,
    nats_url: str,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
) -> None:
    # Given the api's relay publishing and the planner's standing by (whichever took the lock
    # first: a planner killed and started again finds the api's holding it)
    cstor.services.processes["planner"].send_signal(signal.SIGKILL)
    cstor.services.processes["planner"].wait()
    _wait_for(lambda: _relays(database_url) == {"cstor relay api": True}, "the api's relay")
    cstor.services.restart_exited()
    standing_by = {"cstor relay api": True, "cstor relay planner": False}
    _wait_for(lambda: _relays(database_url) == standing_by, "the planner's standby relay")
    # and a migration of 100 objects, its first packets planned and published
    source_bucket, dest_bucket = make_bucket(s3_source), make_bucket(s3_destination)
    source = s3_client_for(s3_source)
    for n in range(OBJECTS):
        source.put_object(Bucket=source_bucket, Key=f"obj-{n:03d}", Body=bytes([n]) * 65536)
    migration_id = cstor.migrate(
        cstor.connect(s3_source), source_bucket, cstor.connect(s3_destination), dest_bucket
    )
    deadline = time.monotonic() + 60
    while not any(subject.startswith("cstor.packet.") for subject, _ in _stream(nats_url)):
        assert time.monotonic() < deadline, "no packet reached the stream"
        time.sleep(0.1)

    # When the api, whose process runs the active relay, is killed with SIGKILL
    api = cstor.services.processes["api"]
    api.send_signal(signal.SIGKILL)
    api.wait()
    killed_at = time.monotonic()
    assert recorded(database_url, "Migration.Completed") == (0, 0), "the kill came too late"

    # Then the planner's relay takes the lock, and the stream catches up with the store,
    # within seconds of the kill
    _wait_for(lambda: _relays(database_url) == {"cstor relay planner": True}, "a takeover")
    assert time.monotonic() - killed_at < TAKEOVER
    while _last_position(_stream(nats_url)) < _stored_positions(database_url)[-1]:
        assert time.monotonic() - killed_at < TAKEOVER, "nothing published after the kill"
        time.sleep(0.2)
    # and the migration completes, its completion published
    completed = f"cstor.migration.{migration_id}.completed"
    deadline = time.monotonic() + 120
    while completed not in (subject for subject, _ in _stream(nats_url)):
        assert time.monotonic() < deadline, "the migration's completion never reached the stream"
        time.sleep(0.5)
    assert recorded(database_url, "ObjectTransfer.Copied") == (OBJECTS, OBJECTS)
    # And the stream holds every stored event exactly once
    time.sleep(1.0)  # what the completion's commit recorded with it
    published = _stream(nats_url)
    event_ids = [event.event_id for _, event in published]
    assert len(event_ids) == len(set(event_ids)), "an event was published twice"
    assert sorted(event.position for _, event in published) == _stored_positions(database_url)


def _relays(database_url: str) -> dict[str, bool]:
    """The relays' lock sessions: each one's application name, and whether it holds the lock."""
    key = locks.OUTBOX_RELAY
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT application_name, bool_or(l.granted AND l.classid = %s AND l.objid = %s)"
            " FROM pg_stat_activity a LEFT JOIN pg_locks l ON l.pid = a.pid"
            " AND l.locktype = 'advisory'"
            " WHERE a.datname = current_database() AND application_name LIKE 'cstor relay%%'"
            " GROUP BY a.pid, application_name",
            (key >> 32, key & 0xFFFFFFFF),
        ).fetchall()
    return {name: bool(holds) for name, holds in rows}


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} never came"
        time.sleep(0.1)


def _stream(nats_url: str) -> list[tuple[str, contracts.Event]]:
    """Every message of the stream CSTOR, in order: its subject and its event."""

    async def read() -> list[tuple[str, contracts.Event]]:
        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            state = (await js.stream_info("CSTOR")).state
            messages = []
            for sequence in range(max(state.first_seq, 1), state.last_seq + 1):  # 0: empty
                message = await js.get_msg("CSTOR", sequence)
                messages.append(
                    (message.subject or "", contracts.decoder.decode(message.data or b""))
                )
            return messages
        finally:
            await nc.close()

    return asyncio.run(read())


def _last_position(messages: list[tuple[str, contracts.Event]]) -> int:
    return messages[-1][1].position if messages else 0


def _stored_positions(database_url: str) -> list[int]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT notification_id FROM cstor_events ORDER BY 1").fetchall()
    return [row[0] for row in rows]
