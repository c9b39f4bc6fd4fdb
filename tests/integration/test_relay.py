"""The outbox relay: every stored event reaches the stream exactly once, in order."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import asyncpg
import msgspec
import pytest
from eventsourcing.persistence import Notification
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from cstor import bus, contracts, stream
from cstor.app.migrations import Migrations
from cstor.app.results import PlanTotals
from cstor.domain.planning import PacketDraft, PlannedObject
from cstor.settings import Settings
from cstor.store import locks
from cstor.store.migrations import migrate
from cstor.store.relay import OutboxRelay
from launcher.embedded import EmbeddedNats
from tests.given import Given

ROOT = Path(__file__).parents[2]


def request_migration(app: Migrations, objects: int) -> uuid.UUID:
    """Record a requested, planned migration of ``objects`` objects: objects + 3 events."""
    migration_id = Given(app).planning()
    migration = app.get(migration_id)
    packet = PacketDraft(planned=[PlannedObject(f"k{n}", n, "etag") for n in range(objects)])
    app.plan_packet(migration, 0, packet, PlanTotals(packets=1, objects=objects))
    return migration_id


async def stream_events(js: JetStreamContext) -> list[contracts.AnyEvent]:
    info = await js.stream_info("CSTOR")
    events = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg("CSTOR", seq)
        events.append(contracts.decoder.decode(msg.data))
    return events


async def assert_published_once_in_order(app: Migrations, js: JetStreamContext) -> None:
    """The stream holds every stored event exactly once, in the store's order."""
    stored = await asyncio.to_thread(app.notifications, 0, 10_000)
    published = await stream_events(js)
    assert [e.position for e in published] == [n.id for n in stored]
    assert len({e.event_id for e in published}) == len(published)


@pytest.fixture
async def relay_parts(
    database_url: str, nats_server: EmbeddedNats
) -> AsyncIterator[tuple[Migrations, NATS]]:
    app = Migrations(Settings(database_url=database_url).eventsourcing_env())
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    await migrate(pool)  # as the api does before it starts its relay
    await pool.close()
    nc = await bus.connect(nats_server.url, "relay-test")
    await stream.ensure_stream(nc.jetstream(), "CSTOR")
    yield app, nc
    await nc.close()
    app.close()


async def wait_for(predicate: object, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not await predicate():  # type: ignore[operator]
            await asyncio.sleep(0.1)


async def test_events_written_while_nats_is_down_are_published_once_in_order(
    relay_parts: tuple[Migrations, NATS], nats_server: EmbeddedNats, database_url: str
) -> None:
    app, nc = relay_parts
    js = nc.jetstream()
    stop = asyncio.Event()
    relay = asyncio.create_task(OutboxRelay(app, nc, database_url).run(stop))

    # Given a relay that has published a first migration's events
    await asyncio.to_thread(request_migration, app, 50)
    await wait_for(lambda: _stream_count(js, 53))

    # When NATS stops, more events are recorded, and NATS comes back
    nats_server.stop()
    await asyncio.to_thread(request_migration, app, 200)
    await asyncio.sleep(1.0)
    nats_server.start()
    await wait_for(lambda: _stream_count(js, 53 + 203))

    # And the relay is replaced by a new one (a restart) that records more
    stop.set()
    await relay
    stop = asyncio.Event()
    relay = asyncio.create_task(OutboxRelay(app, nc, database_url).run(stop))
    await asyncio.to_thread(request_migration, app, 10)
    await wait_for(lambda: _stream_count(js, 53 + 203 + 13))
    await asyncio.sleep(0.5)  # time for any duplicate to show up
    stop.set()
    await relay

    # Then the stream holds every stored event exactly once, in the store's order
    await assert_published_once_in_order(app, js)


async def test_only_one_relay_publishes_at_a_time(
    relay_parts: tuple[Migrations, NATS], database_url: str
) -> None:
    app, nc = relay_parts
    js = nc.jetstream()
    stop = asyncio.Event()
    relays = [CountingRelay(app, nc, database_url) for _ in range(3)]
    tasks = [asyncio.create_task(relay.run(stop)) for relay in relays]
    for _ in range(5):
        await asyncio.to_thread(request_migration, app, 20)
    await wait_for(lambda: _stream_count(js, 5 * 23))
    await asyncio.sleep(1.0)
    stop.set()
    await asyncio.gather(*tasks)
    # Then one relay published everything, each event once (not hidden by the stream's dedupe)
    assert sorted(relay.published for relay in relays) == [0, 0, 5 * 23]
    published = await stream_events(js)
    assert len(published) == 5 * 23
    assert [e.position for e in published] == sorted(e.position for e in published)


async def test_a_caught_up_relay_is_woken_by_the_next_commit(
    relay_parts: tuple[Migrations, NATS], database_url: str
) -> None:
    app, nc = relay_parts
    js = nc.jetstream()
    stop = asyncio.Event()
    # Given a relay that has caught up, and would poll again only after a minute
    relay = OutboxRelay(app, nc, database_url)
    relay.idle_wait = 60.0
    running = asyncio.create_task(relay.run(stop))
    await asyncio.to_thread(request_migration, app, 5)
    await wait_for(lambda: _stream_count(js, 8))

    # When more events are committed
    await asyncio.to_thread(request_migration, app, 5)

    # Then they are published at once: the store's NOTIFY wakes the relay
    await wait_for(lambda: _stream_count(js, 16), timeout=10.0)
    stop.set()
    await running


async def test_a_stranger_in_the_stream_or_a_replay_costs_a_batch_its_chain_never_an_event(
    relay_parts: tuple[Migrations, NATS], database_url: str
) -> None:
    app, nc = relay_parts
    js = nc.jetstream()
    stop = asyncio.Event()
    relay = asyncio.create_task(OutboxRelay(app, nc, database_url).run(stop))
    await asyncio.to_thread(request_migration, app, 30)
    await wait_for(lambda: _stream_count(js, 33))

    # When someone else publishes to the stream between two batches of the relay
    await js.publish("cstor.stranger", b"{}")
    await asyncio.to_thread(request_migration, app, 30)
    await wait_for(lambda: _stream_count(js, 33 + 1 + 33))
    await asyncio.to_thread(request_migration, app, 30)
    await wait_for(lambda: _stream_count(js, 33 + 1 + 66))

    # And a new relay starts over from the beginning (its position lost, and the stream's
    # last event not read)
    stop.set()
    await relay
    conn = await asyncpg.connect(database_url)
    await conn.execute("UPDATE relay_position SET position = 0")
    await conn.close()
    stop = asyncio.Event()
    relay = asyncio.create_task(ReplayingRelay(app, nc, database_url).run(stop))
    await asyncio.to_thread(request_migration, app, 30)
    await wait_for(lambda: _stream_count(js, 33 + 1 + 99))
    await asyncio.sleep(0.5)  # time for any duplicate to show up
    stop.set()
    await relay

    # Then the stream holds every stored event once, in the store's order, and the stranger
    stored = await asyncio.to_thread(app.notifications, 0, 10_000)
    info = await js.stream_info("CSTOR")
    messages = [await js.get_msg("CSTOR", seq) for seq in range(1, info.state.last_seq + 1)]
    assert [m.subject for m in messages].count("cstor.stranger") == 1
    published = [contracts.decoder.decode(m.data or b"") for m in messages if m.data != b"{}"]
    assert [e.position for e in published] == [n.id for n in stored]


async def test_a_relay_killed_after_the_streams_ack_publishes_nothing_twice_however_long_down(
    relay_parts: tuple[Migrations, NATS], nats_server: EmbeddedNats, database_url: str
) -> None:
    app, nc = relay_parts
    js = nc.jetstream()
    # Given a stream that remembers message ids for 2 s only, and 251 events recorded
    await stream.ensure_stream(js, "CSTOR", stream.StreamLimits(duplicate_window=2.0))
    await asyncio.to_thread(request_migration, app, 248)

    # When a relay process is killed (SIGKILL) after JetStream acknowledged its batch,
    # before it saved its position
    dying = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.dying_relay", database_url, nats_server.url, cwd=ROOT
    )
    async with asyncio.timeout(60):
        assert await dying.wait() == -signal.SIGKILL
    assert (await js.stream_info("CSTOR")).state.messages == 251
    conn = await asyncpg.connect(database_url)
    assert await conn.fetchval("SELECT position FROM relay_position") == 0
    await conn.close()
    # And stays down past the stream's duplicate window, then starts again and records more
    await asyncio.sleep(3.0)
    stop = asyncio.Event()
    relay = asyncio.create_task(OutboxRelay(app, nc, database_url).run(stop))
    await asyncio.to_thread(request_migration, app, 10)
    await wait_for(lambda: _stream_count(js, 251 + 13))
    await asyncio.sleep(0.5)  # time for any duplicate to show up
    stop.set()
    await relay

    # Then the stream holds every stored event exactly once, in the store's order
    await assert_published_once_in_order(app, js)


async def test_the_streams_position_is_its_last_events_past_a_strangers_message(
    relay_parts: tuple[Migrations, NATS], database_url: str
) -> None:
    app, nc = relay_parts
    relay = OutboxRelay(app, nc, database_url)
    # Given an empty stream, then a batch published and someone else's message after it
    assert await relay.stream_position() == 0
    await asyncio.to_thread(request_migration, app, 5)
    published_to = await relay.publish_after(0)
    await nc.jetstream().publish("cstor.stranger", b"{}")

    # Then the relay reads its position from its own last event
    stored = await asyncio.to_thread(app.notifications, 0, 10_000)
    assert await relay.stream_position() == published_to == stored[-1].id


async def test_a_stream_ahead_of_the_store_is_told_in_a_warning_naming_both_positions(
    relay_parts: tuple[Migrations, NATS], database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    app, nc = relay_parts
    js = nc.jetstream()
    # Given a stream whose last event is at a position this store never reached (another
    # store's stream, or this store emptied), and 4 events in the store
    await asyncio.to_thread(request_migration, app, 1)
    last = (await asyncio.to_thread(app.notifications, 0, 100))[-1].id
    await OutboxRelay(app, nc, database_url).publish_after(0)
    (event, *_) = await stream_events(js)
    ahead = msgspec.structs.replace(event, position=10_000, event_id=uuid.uuid4())
    await js.publish(contracts.subject_of(ahead), contracts.encoder.encode(ahead))

    # When a relay takes the lock
    stop = asyncio.Event()
    with caplog.at_level(logging.WARNING, logger="cstor.store.relay"):
        relay = asyncio.create_task(OutboxRelay(app, nc, database_url).run(stop))

        async def warned() -> bool:
            return any("another store" in r.getMessage() for r in caplog.records)

        await wait_for(warned)
        stop.set()
        await relay

    # Then the warning names the stream, its position and the store's, and what to do
    (warning,) = [r.getMessage() for r in caplog.records if "another store" in r.getMessage()]
    assert "stream CSTOR" in warning
    assert "position 10000" in warning
    assert f"last is {last}" in warning
    assert "CSTOR_STREAM_NAME" in warning


async def test_a_standby_whose_session_ends_stands_by_again_then_takes_over(
    relay_parts: tuple[Migrations, NATS], database_url: str
) -> None:
    app, nc = relay_parts
    js = nc.jetstream()
    # Given a relay publishing, and another standing by
    stop_active, stop_standby = asyncio.Event(), asyncio.Event()
    active = asyncio.create_task(OutboxRelay(app, nc, database_url, holder="a").run(stop_active))
    await asyncio.to_thread(request_migration, app, 5)
    await wait_for(lambda: _stream_count(js, 8))
    standby = OutboxRelay(app, nc, database_url, holder="b")
    standing_by = asyncio.create_task(standby.run(stop_standby))
    await wait_for(lambda: _sessions(database_url, "cstor relay b", 1))

    # When Postgres ends the standby's session (a restart, a network cut), and later the
    # active relay stops
    await _terminate(database_url, "cstor relay b")
    await wait_for(lambda: _sessions(database_url, "cstor relay b", 0))
    await wait_for(lambda: _sessions(database_url, "cstor relay b", 1))
    assert not standing_by.done()
    stop_active.set()
    await active

    # Then the standby takes over: what is recorded next is published, once
    await asyncio.to_thread(request_migration, app, 5)
    await wait_for(lambda: _stream_count(js, 16), timeout=10.0)
    stop_standby.set()
    await standing_by


async def test_a_relay_whose_lock_session_ended_publishes_nothing_without_the_lock(
    relay_parts: tuple[Migrations, NATS], database_url: str
) -> None:
    app, nc = relay_parts
    js = nc.jetstream()
    stop = asyncio.Event()
    # Given a relay that has caught up
    running = asyncio.create_task(OutboxRelay(app, nc, database_url, holder="a").run(stop))
    await asyncio.to_thread(request_migration, app, 5)
    await wait_for(lambda: _stream_count(js, 8))

    # When Postgres ends its lock's session, and another (here the test) takes the lock
    await _terminate(database_url, "cstor relay a")
    other = await asyncpg.connect(database_url)
    async with asyncio.timeout(10.0):
        while not await other.fetchval("SELECT pg_try_advisory_lock($1)", locks.OUTBOX_RELAY):
            await asyncio.sleep(0.05)
    await asyncio.to_thread(request_migration, app, 5)

    # Then it publishes nothing while the other holds the lock, and all once it is free
    await asyncio.sleep(3.0)
    assert (await js.stream_info("CSTOR")).state.messages == 8
    await other.close()
    await wait_for(lambda: _stream_count(js, 16), timeout=10.0)
    stop.set()
    await running


async def _terminate(database_url: str, application_name: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = $1",
            application_name,
        )
    finally:
        await conn.close()


async def _sessions(database_url: str, application_name: str, expected: int) -> bool:
    conn = await asyncpg.connect(database_url)
    try:
        count = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = $1",
            application_name,
        )
    finally:
        await conn.close()
    return bool(count == expected)


class CountingRelay(OutboxRelay):
    """A relay that counts the events it sends."""

    published = 0

    def _translate(self, notifications: Sequence[Notification]) -> list[contracts.Event]:
        self.published += len(notifications)
        return super()._translate(notifications)


class ReplayingRelay(OutboxRelay):
    """A relay that does not see how far the stream got: it replays from its saved position."""

    async def stream_position(self) -> int:
        return 0


async def _stream_count(js: JetStreamContext, expected: int) -> bool:
    info = await js.stream_info("CSTOR")
    assert info.state.messages <= expected, "more messages than events: a duplicate"
    return info.state.messages == expected
