"""``cstor rebuild-read-models``: the projector's read models folded again from the store.

The event store is the source of truth, so the rebuild reads its notification log, not
the stream (which may have been made again since). It empties the read models and folds
every stored event, in order, with the projector's own `fold`, through the event at the
end of the stream; the projector's position becomes that event's stream sequence, so the
projector goes on with the next message and nothing is applied twice or missed. It all
happens in one transaction: readers see the old read models until it commits, and a
rebuild that fails leaves them as they were.

While it runs it holds `locks.READ_MODEL_REBUILD`, which each of the projector's transactions takes
shared: a projector left running waits, then goes on from the rebuilt position.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import anyio
import asyncpg
import nats
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from cstor import bus, contracts
from cstor.app.migrations import Migrations
from cstor.outbox import to_contract
from cstor.readmodel.projection import empty, fold, move_position
from cstor.settings import Settings
from cstor.store import deadletters, locks
from cstor.store.deadletters import Failure
from cstor.store.migrations import migrate
from cstor.store.pool import create_pool
from services.projector.salvage import CONSUMER, fold_each

log = logging.getLogger(__name__)

BATCH = 1000

StoredEvents = Callable[[int, int], Awaitable[Sequence[contracts.Event]]]
"""Up to `limit` stored events after a position in the notification log, in order."""
StreamEnd = Callable[[], Awaitable[tuple[int, int]]]
"""The stream's last sequence, and the store position of the event there (0, 0: empty)."""


@dataclass(frozen=True)
class Rebuilt:
    """What a rebuild did."""

    events: int  # folded from the store
    stream_sequence: int  # the projector's position now
    recovered: int  # dead letters of the projector's that now applied, removed
    still_failing: list[Failure]  # recorded (again) as dead letters


async def rebuild(conn: asyncpg.Connection, stored: StoredEvents, stream_end: StreamEnd) -> Rebuilt:
    """Empty the read models and fold the store's events into them again, in one commit."""
    failures: list[Failure] = []
    folded = 0
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", locks.READ_MODEL_REBUILD)
        # Read once the projector is held: it can apply nothing past this from now on.
        sequence, through = await stream_end()
        await empty(conn)
        after = 0
        while after < through:
            events = [e for e in await stored(after, BATCH) if e.position <= through]
            if not events:
                break
            failures += await _fold_batch(conn, events)
            folded += len(events)
            after = events[-1].position
        await move_position(conn, sequence)
        recovered = await deadletters.forget_all_but(
            conn, CONSUMER, [failure.event.event_id for failure in failures]
        )
    for failure in failures:
        deadletters.alert(failure)
    return Rebuilt(folded, sequence, recovered, failures)


async def _fold_batch(conn: asyncpg.Connection, events: Sequence[contracts.Event]) -> list[Failure]:
    """Fold a batch; if it fails, each event on its own, recording those that fail."""
    try:
        async with conn.transaction():
            await fold(conn, events)
        return []
    except Exception as error:
        if bus.is_transient(error):
            raise
    failures = []
    for event, failed in await fold_each(conn, events):
        failure = Failure(CONSUMER, event, None, deadletters.describe(failed), 1, deadletters.now())
        await deadletters.record(conn, failure)
        failures.append(failure)
    return failures


async def rebuild_from_store(settings: Settings) -> Rebuilt:
    """Rebuild the read models of the Postgres and the stream `settings` name."""
    async with contextlib.AsyncExitStack() as stack:
        pool = await create_pool(settings.database_url, min_size=1, max_size=1)
        stack.push_async_callback(pool.close)
        # Once, not for ever as a service would: a command says NATS is away and stops
        # (its error, raised, is told by the command; the client need not log it too).
        nc = await nats.connect(settings.nats_url, name="cstor-rebuild-read-models",
                                allow_reconnect=False, max_reconnect_attempts=1,
                                reconnect_time_wait=0.5, connect_timeout=5,
                                error_cb=_ignore)  # fmt: skip
        stack.push_async_callback(nc.close)
        app = await anyio.to_thread.run_sync(Migrations, settings.eventsourcing_env())
        stack.callback(app.close)
        await migrate(pool)
        js = nc.jetstream()

        async def stored(after: int, limit: int) -> list[contracts.Event]:
            return await anyio.to_thread.run_sync(_stored_events, app, after, limit)

        async with pool.acquire() as conn:

            async def stream_end() -> tuple[int, int]:
                return await _stream_end(js, settings.stream_name, conn)

            return await rebuild(conn, stored, stream_end)
    raise AssertionError("unreachable")  # mypy: the exit stack may swallow exceptions


async def _ignore(_: Exception) -> None:
    pass


def _stored_events(app: Migrations, after: int, limit: int) -> list[contracts.Event]:
    """The store's events after `after`, as the relay puts them on the stream."""
    return [
        to_contract(app.mapper.to_domain_event(n), n.id) for n in app.notifications(after, limit)
    ]


async def _stream_end(
    js: JetStreamContext, stream: str, conn: asyncpg.Connection
) -> tuple[int, int]:
    """The stream's last sequence and its event's position. Once every message aged out
    (CSTOR_STREAM_MAX_AGE), the relay's saved position: what it has published."""
    try:
        state = (await js.stream_info(stream)).state
    except NotFoundError:
        return 0, 0
    if state.last_seq == 0:
        return 0, 0
    if state.messages == 0:
        published = await conn.fetchval(
            "SELECT position FROM relay_position WHERE name = $1", stream
        )
        return state.last_seq, published or 0
    message = await js.get_msg(stream, seq=state.last_seq)
    assert message.data is not None
    return state.last_seq, contracts.decoder.decode(message.data).position
