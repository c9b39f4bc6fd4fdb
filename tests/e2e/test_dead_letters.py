"""No poison message stops cstor for everyone: dead letters, their alerts, and the rebuild.

Real Postgres, NATS and S3 servers; the poison is written straight to the event store,
as the api's validation would never let it through.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest
from nats.js import JetStreamContext

from cstor import bus, contracts, stream
from cstor.app.migrations import Migrations
from cstor.store import deadletters
from cstor.store.migrations import migrate
from cstor.store.pool import create_pool
from launcher.embedded import EmbeddedNats, EmbeddedS3, free_port
from tests.launcher_cli import run_cstor
from tests.sessions import PASSWORD, api_token, csrf_field, new_email
from tests.stack import RunningCstor, s3_client_for

ADMIN = new_email("admin")


pytestmark = pytest.mark.stack(
    admin_emails=f"someone@example.com, {ADMIN}", consumer_max_failures=2
)


def record_poison(cstor: RunningCstor, name: str) -> str:
    """A migration request recorded in the event store, past the api's validation."""
    app = Migrations(cstor.settings.eventsourcing_env())
    try:
        migration_id = app.request(
            name=name,
            owner=str(uuid.uuid4()),
            source_connection_id=uuid.uuid4(),
            source_bucket="nowhere",
            source_prefix="",
            destination_connection_id=uuid.uuid4(),
            destination_bucket="nowhere-else",
            destination_prefix="",
        )
    finally:
        app.close()
    return str(migration_id)


def small_migration(
    cstor: RunningCstor,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
) -> str:
    """A real migration of three objects through the REST API, waited for; its id."""
    source_bucket, dest_bucket = make_bucket(s3_source), make_bucket(s3_destination)
    for n in range(3):
        s3_client_for(s3_source).put_object(Bucket=source_bucket, Key=f"k{n}", Body=b"x" * n)
    migration_id = cstor.migrate(
        cstor.connect(s3_source, "source"),
        source_bucket,
        cstor.connect(s3_destination, "destination"),
        dest_bucket,
    )
    assert cstor.wait_finished(migration_id, timeout=60)["status"] == "completed"
    wait_projected(cstor, migration_id)
    return migration_id


def wait_projected(cstor: RunningCstor, migration_id: str, timeout: float = 60) -> None:
    """Wait until the read model (which the list reads) shows the migration completed;
    a single migration's GET answers from the event store until then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = {m["id"]: m for m in cstor.api.get("/api/v1/migrations").json()}
        if listed.get(migration_id, {}).get("status") == "completed":
            return
        time.sleep(0.2)
    raise AssertionError(f"migration {migration_id} was not projected in {timeout} s")


@contextlib.contextmanager
def admin_client(cstor: RunningCstor) -> Iterator[httpx.Client]:
    """A REST client with the admin's API token (the admin signed up on first use)."""
    with httpx.Client(base_url=str(cstor.api.base_url), timeout=30.0) as client:
        yield _as_admin(client)


def _as_admin(client: httpx.Client) -> httpx.Client:
    created = client.post("/api/v1/users", json={"email": ADMIN, "password": PASSWORD})
    assert created.status_code in (201, 409), created.text
    token = client.post("/api/v1/tokens", json={"name": "admin"}, auth=(ADMIN, PASSWORD))
    client.headers["Authorization"] = f"Bearer {token.json()['token']}"
    return client


@contextlib.contextmanager
def browser(cstor: RunningCstor, email: str) -> Iterator[httpx.Client]:
    """A client signed in to the dashboard through its form, holding the session cookie."""
    with httpx.Client(base_url=str(cstor.api.base_url), timeout=30.0) as client:
        yield _signed_in(client, email)


def _signed_in(client: httpx.Client, email: str) -> httpx.Client:
    form = client.get("/sign-in")
    signed_in = client.post(
        "/sign-in",
        data={"email": email, "password": PASSWORD, "_csrf_token": csrf_field(form.text)},
    )
    assert signed_in.status_code == 303, signed_in.text  # to the dashboard, signed in
    return client


def dead_letter_count(metrics: str, consumer: str) -> int:
    for line in metrics.splitlines():
        if line.startswith(f'cstor_dead_letters{{consumer="{consumer}"}} '):
            return int(line.split()[-1])
    raise AssertionError(f"no cstor_dead_letters line for {consumer} in:\n{metrics}")


def test_an_event_the_projector_cannot_apply_does_not_stop_it(
    cstor: RunningCstor,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
) -> None:
    # Given a migration request whose name holds a NUL, which Postgres text refuses,
    # recorded in the store before any other
    poison = record_poison(cstor, "bad\x00name")

    # When a normal migration is made afterwards
    good = small_migration(cstor, s3_source, s3_destination, make_bucket)

    # Then the later migration was projected, the poison was not
    assert cstor.api.get(f"/api/v1/migrations/{poison}").status_code == 404
    # And the admin endpoint lists the poison as the projector's dead letter
    with admin_client(cstor) as admin:
        listed = admin.get("/api/v1/admin/dead-letters")
        assert listed.status_code == 200, listed.text
        letters = [d for d in listed.json() if d["consumer"] == "projector"]
        assert len(letters) == 1, listed.json()
        letter = letters[0]
        assert letter["subject"] == f"cstor.migration.{poison}.requested"
        assert letter["event_type"] == "migration.requested"
        assert letter["stream_sequence"] >= 1
        assert "0x00" in letter["error"]
        assert '"name":"bad\\u0000name"' in letter["event"]
        assert letter["first_failed_at"] <= letter["recorded_at"]
    # And the dashboard's admin page shows it to the admin, and to no one else
    with browser(cstor, ADMIN) as page:
        shown = page.get("/admin/dead-letters")
        assert shown.status_code == 200
        assert f"cstor.migration.{poison}.requested" in shown.text
        assert "bad\\u0000name" in shown.text
    user = new_email("user")
    api_token(cstor.api, user)
    with browser(cstor, user) as page:
        shown = page.get("/admin/dead-letters")
        assert shown.status_code == 403
        assert "Only cstor&#39;s admins may see this" in shown.text
    # And the metric counts it
    metrics = httpx.get(cstor.api.base_url.join("/metrics")).text  # no sign-in: a scraper
    assert dead_letter_count(metrics, "projector") == 1
    assert dead_letter_count(metrics, "transfer") == 0
    # And a user who is not an admin is refused, with a problem, not the list
    refused = cstor.api.get("/api/v1/admin/dead-letters")
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "admin" in refused.json()["detail"]
    # And the projector logged it at ERROR, with its sequence, subject and error
    log = (cstor.settings.data_dir / "logs" / "projector.log").read_text()
    alert = (
        "ERROR cstor.store.deadletters: dead letter: consumer projector gave up on stream sequence"
        f" {letter['stream_sequence']} (cstor.migration.{poison}.requested"
    )
    assert alert in log
    assert good in {m["id"] for m in cstor.api.get("/api/v1/migrations").json()}


def test_rebuilding_the_read_models_applies_the_dead_letters_that_now_apply(
    cstor: RunningCstor,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
) -> None:
    # Given a read model that refuses one name (a cause an operator can fix), and
    # events the projector could not apply because of it and because of a NUL
    with psycopg.connect(cstor.settings.database_url, autocommit=True) as conn:
        _wait_for_table(conn, "migrations_view")
        conn.execute(
            "ALTER TABLE migrations_view ADD CONSTRAINT no_refused CHECK (name <> 'refused')"
        )
    refused = record_poison(cstor, "refused")
    poison = record_poison(cstor, "bad\x00name")
    first = small_migration(cstor, s3_source, s3_destination, make_bucket)
    before = cstor.api.get(f"/api/v1/migrations/{first}").json()
    with admin_client(cstor) as admin:
        letters = admin.get("/api/v1/admin/dead-letters").json()
    assert {d["migration_id"] for d in letters} == {refused, poison}

    # When the cause is fixed and the read models are rebuilt, the projector stopped
    with psycopg.connect(cstor.settings.database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE migrations_view DROP CONSTRAINT no_refused")
    projector = cstor.services.processes["projector"]
    projector.send_signal(signal.SIGTERM)
    projector.wait(15)
    rebuilt = run_cstor(
        "rebuild-read-models", env={**os.environ, **cstor.settings.to_env()}, timeout=120
    )
    cstor.services.start_one("projector", "projector")

    # Then it says what it did: one dead letter now applies, one still fails
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "1 dead letters of the projector's now apply and were removed" in rebuilt.stdout
    assert "1 events still cannot be applied" in rebuilt.stdout
    # And the refused migration is now projected, the NUL one still a dead letter
    with admin_client(cstor) as admin:
        letters = admin.get("/api/v1/admin/dead-letters").json()
    assert [d["migration_id"] for d in letters] == [poison]
    # And the migration that was projected before reads exactly as it did
    assert cstor.api.get(f"/api/v1/migrations/{first}").json() == before
    # And the projector goes on from there: a new migration is projected, nothing twice
    second = small_migration(cstor, s3_source, s3_destination, make_bucket)
    assert cstor.api.get(f"/api/v1/migrations/{first}").json() == before
    assert cstor.api.get(f"/api/v1/migrations/{second}").json()["objects_copied"] == 3
    with psycopg.connect(cstor.settings.database_url) as conn:
        names = {row[0] for row in conn.execute("SELECT name FROM migrations_view")}
    assert "refused" in names


def test_rebuilding_without_nats_says_so_and_changes_nothing(database_url: str) -> None:
    # Given a database, and no NATS where the settings say
    env = {**os.environ, "CSTOR_DATABASE_URL": database_url,
           "CSTOR_NATS_URL": f"nats://127.0.0.1:{free_port()}"}  # fmt: skip

    # When the read models are rebuilt
    done = run_cstor("rebuild-read-models", env=env, timeout=60)

    # Then it says what is away, in a sentence, not a trace, and fails
    assert done.returncode == 1
    assert "could not reach Postgres or NATS" in done.stderr
    assert "nothing was changed" in done.stderr
    assert "Traceback" not in done.stderr


def _wait_for_table(conn: psycopg.Connection[Any], table: str) -> None:
    for _ in range(100):
        if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone() != (None,):
            return
        time.sleep(0.1)
    raise AssertionError(f"{table} was never made")


# The consumer loop's bound, on a real nats-server and Postgres ---------------------------


def requested(position: int, name: str = "ok") -> contracts.MigrationRequested:
    return contracts.MigrationRequested(
        event_id=uuid.uuid4(),
        migration_id=uuid.uuid4(),
        occurred_at=datetime.now(UTC),
        position=position,
        name=name,
        owner="someone",
        source_connection_id=uuid.uuid4(),
        source_bucket="a",
        source_prefix="",
        destination_connection_id=uuid.uuid4(),
        destination_bucket="b",
        destination_prefix="",
    )


async def publish(js: JetStreamContext, events: list[contracts.MigrationRequested]) -> None:
    for event in events:
        await js.publish_async(contracts.subject_of(event), contracts.encoder.encode(event))
    await js.publish_async_completed()


@pytest.fixture
async def js(nats_server: EmbeddedNats) -> AsyncIterator[JetStreamContext]:
    nc = await bus.connect(nats_server.url, "dead-letter-test")
    js = nc.jetstream()
    await stream.ensure_stream(js, "CSTOR")
    yield js
    await nc.close()


async def until(condition: Callable[[], bool], timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def test_an_ordered_consumer_salvages_a_batch_after_a_bounded_number_of_failures(
    js: JetStreamContext,
) -> None:
    attempts: list[list[int]] = []
    salvaged: list[list[int]] = []
    applied: list[int] = []
    outages = 0

    async def handle(deliveries: list[bus.Delivery]) -> None:
        nonlocal outages
        positions = [d.event.position for d in deliveries]
        attempts.append(positions)
        if outages < 2:  # Postgres away a while: retried in place, not counted
            outages += 1
            raise ConnectionRefusedError("connection refused")
        if 3 in positions:
            raise ValueError("cannot apply event 3")
        applied.extend(positions)

    async def salvage(deliveries: list[bus.Delivery]) -> None:
        salvaged.append([d.event.position for d in deliveries])
        assert all(d.failures == 2 and d.first_failed_at is not None for d in deliveries)
        applied.extend(d.event.position for d in deliveries if d.event.position != 3)

    # Given an ordered consumer that gives up on a batch after 2 failures
    spec = bus.ConsumerSpec(stream="CSTOR", durable="folds", filter_subjects=["cstor.>"],
                            batch=500, ack_last=True, max_failures=2)  # fmt: skip
    await publish(js, [requested(p) for p in range(1, 6)])
    stop = asyncio.Event()
    consuming = asyncio.create_task(bus.consume(js, spec, handle, stop, salvage=salvage))

    # When its first batch holds an event it can never apply, and more follow
    await until(lambda: len(applied) >= 4)
    await publish(js, [requested(p) for p in range(6, 9)])
    await until(lambda: len(applied) >= 7)
    stop.set()
    await consuming

    # Then the outage was waited out (2 tries) without counting, the batch was tried
    # twice more, then salvaged once, and everything after it was handled in order
    assert attempts[:4] == [[1, 2, 3, 4, 5]] * 4
    assert salvaged == [[1, 2, 3, 4, 5]]
    assert applied == [1, 2, 4, 5, 6, 7, 8]
    info = await js.consumer_info("CSTOR", "folds")
    assert info.num_ack_pending == 0
    assert info.num_pending == 0


async def test_a_message_failing_again_and_again_is_buried_and_terminated(
    js: JetStreamContext, database_url: str
) -> None:
    pool = await create_pool(database_url, min_size=1, max_size=2)
    await migrate(pool)
    handled: list[int] = []
    paused = {"left": 3}

    async def handle(deliveries: list[bus.Delivery]) -> None:
        positions = [d.event.position for d in deliveries]
        if 2 in positions:
            raise KeyError("no such thing")  # a bug: never works
        if 4 in positions and paused["left"]:
            paused["left"] -= 1
            raise bus.TransientError("migration paused")  # may work later: not counted
        handled.extend(positions)

    # Given a consumer acking each message, with a dead-letter sink, burying at 3 failures
    spec = bus.ConsumerSpec(stream="CSTOR", durable="acked", filter_subjects=["cstor.>"],
                            batch=10, max_failures=3)  # fmt: skip
    events = [requested(p) for p in range(1, 6)]
    await publish(js, events)
    stop = asyncio.Event()
    sink = deadletters.PostgresDeadLetters(pool)
    consuming = asyncio.create_task(bus.consume(js, spec, handle, stop, dead_letters=sink))

    # When one of its messages fails every time, another is put off three times
    try:
        await until(lambda: sorted(handled) == [1, 3, 4, 5])
        letters: list[deadletters.DeadLetter] = []
        async with asyncio.timeout(20):
            while not letters:
                letters = await deadletters.listed(pool)
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        stop.set()
        await consuming
        info = await js.consumer_info("CSTOR", "acked")
        counts = await deadletters.counts(pool)
        pending_failures = await pool.fetchval("SELECT count(*) FROM delivery_failures")
    finally:
        await pool.close()

    # Then the failing one is a dead letter after its third failure and was terminated,
    # the one put off was handled in the end and never counted, the others once each
    assert [(d.consumer, d.stream_sequence, d.failures) for d in letters] == [("acked", 2, 3)]
    assert letters[0].event_id == events[1].event_id
    assert letters[0].error == "KeyError: 'no such thing'"
    assert counts["acked"] == 1
    assert sorted(handled) == [1, 3, 4, 5]
    assert info.num_ack_pending == 0
    assert info.num_pending == 0
    assert pending_failures == 0
