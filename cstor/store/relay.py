"""The outbox relay: publishes the event store's notification log to JetStream, in order.

Each event goes out with its event id as ``Nats-Msg-Id``, so a replay after a crash is
deduplicated by the stream. One relay publishes at a time, however many processes run
one: a Postgres advisory lock decides. Its position is kept in Postgres; on taking the
lock it resumes after the later of that and the position of the stream's last event
(each carries its own), so a batch stored just before a crash is not published again,
however long the relay was down. While NATS is away, events simply wait in the store.
Once caught up, it waits for the NOTIFY the store sends with every commit rather than
polling."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import anyio
import asyncpg
import msgspec
from eventsourcing.persistence import Notification
from nats.aio.client import Client as NATS
from nats.js.errors import APIError, NotFoundError

from cstor import contracts
from cstor.app.migrations import Migrations
from cstor.outbox import to_contract
from cstor.store import locks
from cstor.store.recorder import postgres_recorder

log = logging.getLogger(__name__)

BATCH = 1000
LOOK_BACK = 100
"""Messages from the stream's end the relay reads at most to find its last event."""


class OutboxRelay:
    """Publishes stored events to the stream, each exactly once (with the stream's dedupe)."""

    def __init__(
        self, app: Migrations, nc: NATS, database_url: str, name: str = "CSTOR", holder: str = ""
    ) -> None:
        self.app = app
        self.nc = nc
        self.js = nc.jetstream()
        self.database_url = database_url
        self.name = name
        # Its lock's session is named after it (pg_stat_activity.application_name): which
        # process publishes, and which stand by, can be told from Postgres.
        self.application_name = f"cstor relay {holder}".strip()
        # Caught up, the relay waits for the store's NOTIFY; this long at most, in case
        # one is ever missed.
        self.idle_wait = 1.0
        # The stream's last sequence, while the relay knows it is its own last message.
        self._last_sequence: int | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Wait for the lock, then publish until ``stop`` is set; retry after any failure."""
        while not stop.is_set():
            try:
                await self._run_with_lock(stop)
            except Exception as error:
                log.warning("relay interrupted (%s); resuming in 1s", error)
                await _sleep_unless(stop, 1.0)

    async def _run_with_lock(self, stop: asyncio.Event) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(
            self.database_url, server_settings={"application_name": self.application_name}
        )
        try:
            while not stop.is_set():
                if await conn.fetchval("SELECT pg_try_advisory_lock($1)", locks.OUTBOX_RELAY):
                    break
                await _sleep_unless(stop, 1.0)
            else:
                return
            # Listening before the first read: a commit after it is never missed.
            recorded = asyncio.Event()
            channel = postgres_recorder(self.app).channel_name
            await conn.add_listener(channel, lambda *_: recorded.set())
            position = await self._resume_position(conn)
            log.info("relay: holds the lock; publishing after position %d", position)
            while not stop.is_set():
                if conn.is_closed():  # its session ended, and the lock with it: another may hold it
                    raise ConnectionError("the relay's lock session ended")
                recorded.clear()  # before the read: a commit during it wakes the next wait
                published_to = await self.publish_after(position)
                if published_to == position:
                    await _wait_for_either(stop, recorded, self.idle_wait)
                    continue
                await conn.execute(
                    "UPDATE relay_position SET position = $2 WHERE name = $1",
                    self.name,
                    published_to,
                )
                position = published_to
        finally:
            await conn.close()  # releases the advisory lock

    async def _resume_position(self, conn: asyncpg.Connection) -> int:
        """The later of the saved position and the stream's last event's, saved.

        A relay killed after the stream stored a batch but before it saved its position
        would publish that batch again, and the stream drops the copies only within its
        duplicate window: past it they would be stored twice.
        """
        saved: int = await conn.fetchval(
            "INSERT INTO relay_position (name, position) VALUES ($1, 0) "
            "ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING position",
            self.name,
        )
        in_stream = await self.stream_position()
        if in_stream <= saved:
            return saved
        log.info("relay: the stream holds events up to %d (saved: %d); resuming after it",
                 in_stream, saved)  # fmt: skip
        recorded = await anyio.to_thread.run_sync(self.app.recorder.max_notification_id) or 0
        if in_stream > recorded:
            log.warning(
                "relay: stream %s holds events up to position %d, but this store's last is %d: "
                "the stream is another store's (or this store was emptied). Nothing is "
                "published until the store passes it; give this store a stream of its own "
                "(CSTOR_STREAM_NAME) or delete the old one",
                self.name, in_stream, recorded,
            )  # fmt: skip
        await conn.execute(
            "UPDATE relay_position SET position = $2 WHERE name = $1", self.name, in_stream
        )
        return in_stream

    async def stream_position(self) -> int:
        """The store position of the stream's last event (0 if it has none).

        Looks back past a few messages that are not events (another publisher's)."""
        state = (await self.js.stream_info(self.name)).state
        for sequence in range(state.last_seq, max(state.first_seq, 1) - 1, -1)[:LOOK_BACK]:
            try:
                message = await self.js.get_msg(self.name, sequence)
                return contracts.decoder.decode(message.data or b"").position
            except (NotFoundError, msgspec.ValidationError, msgspec.DecodeError):
                continue  # deleted, or not an event
        return 0

    async def publish_after(self, position: int) -> int:
        """Publish one batch of events recorded after ``position``; return the new position."""
        notifications = await anyio.to_thread.run_sync(self.app.notifications, position, BATCH)
        if not notifications:
            return position
        events = await anyio.to_thread.run_sync(self._translate, notifications)
        if not await self._publish_chained(events):
            await self._publish_each(events)
        return events[-1].position

    async def _publish_chained(self, events: Sequence[contracts.Event]) -> bool:
        """Publish the batch awaiting one acknowledgement; False if it cannot vouch for all.

        Each message is stored only if the stream's last sequence is the one before it
        (``Nats-Expected-Last-Sequence``) and the last message stored is the event before
        it (``Nats-Expected-Last-Msg-Id``), so when the last is stored in its place, every
        one of them was stored, in order. Anything else (a
        replay whose first events the stream already has, another publisher, a refusal)
        breaks the chain from there on; the batch then goes again one by one, and the
        stream drops by ``Nats-Msg-Id`` what it already holds. Acknowledging each
        message cost the relay three times the CPU of publishing it.
        """
        if self._last_sequence is None:
            self._last_sequence = (await self.js.stream_info(self.name)).state.last_seq
        first = self._last_sequence
        self._last_sequence = None  # known again only once the chain holds
        *chained, last = events
        before: contracts.Event | None = None
        for offset, event in enumerate(chained):
            await self.nc.publish(
                contracts.subject_of(event),
                contracts.encoder.encode(event),
                headers=_headers(event, first + offset, before),
            )
            before = event
        try:
            ack = await self.js.publish(
                contracts.subject_of(last),
                contracts.encoder.encode(last),
                timeout=30.0,
                headers=_headers(last, first + len(chained), before),
            )
        except APIError as error:  # the chain broke somewhere: say where in the log
            log.info("relay: publishing one by one after %s", error.description)
            return False
        if ack.duplicate or ack.seq != first + len(events):
            return False
        self._last_sequence = ack.seq
        return True

    async def _publish_each(self, events: Sequence[contracts.Event]) -> None:
        """Publish the batch awaiting every acknowledgement (duplicates are dropped)."""
        # Queue the whole batch before yielding to the loop: the client then writes it to
        # the socket in one go instead of one send per event.
        acks = []
        for event in events:
            acks.append(
                await self.js.publish_async(
                    contracts.subject_of(event),
                    contracts.encoder.encode(event),
                    headers={"Nats-Msg-Id": str(event.event_id)},
                )
            )
        async with asyncio.timeout(30.0):
            await asyncio.gather(*acks)
        # A duplicate's ack names its first place, not the stream's end: ask the stream.
        self._last_sequence = None

    def _translate(self, notifications: Sequence[Notification]) -> list[contracts.Event]:
        return [to_contract(self.app.mapper.to_domain_event(n), n.id) for n in notifications]


def _headers(event: contracts.Event, after: int, before: contracts.Event | None) -> dict[str, str]:
    """A chained message's headers: stored only right after sequence `after`, which must
    be the event `before` it (a stranger's message in a refused one's place breaks it)."""
    headers = {"Nats-Msg-Id": str(event.event_id), "Nats-Expected-Last-Sequence": str(after)}
    if before is not None:
        headers["Nats-Expected-Last-Msg-Id"] = str(before.event_id)
    return headers


async def _wait_for_either(first: asyncio.Event, second: asyncio.Event, seconds: float) -> None:
    """Wait until either event is set, or ``seconds`` have passed."""
    waiters = [asyncio.ensure_future(first.wait()), asyncio.ensure_future(second.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            await stop.wait()
    except TimeoutError:
        pass


async def lag(pool: asyncpg.Pool, name: str = "CSTOR") -> int:
    """Events the store holds that the relay has not yet published to stream ``name``."""
    behind: int = await pool.fetchval(
        "SELECT greatest(0, coalesce((SELECT max(notification_id) FROM cstor_events), 0)"
        " - coalesce((SELECT position FROM relay_position WHERE name = $1), 0))",
        name,
    )
    return behind
