"""The HTMX dashboard: its pages and forms, in-process on real Postgres, NATS and S3 servers,
and once end to end in Debian's Chromium."""

from __future__ import annotations

import asyncio
import html
import re
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.fernet import Fernet
from litestar.testing import AsyncTestClient

from cstor import contracts
from cstor.settings import Settings
from launcher.embedded import EmbeddedS3
from services.api.app import create_app
from services.api.dashboard import human_bytes, percent
from tests.readmodel_rows import migration_event, record_events, record_migration, record_objects
from tests.sessions import sign_up
from tests.stack import RunningCstor, s3_client_for

Client = AsyncTestClient[Any]


@pytest.fixture
async def client(database_url: str, nats_url: str) -> AsyncIterator[Client]:
    """The api with its lifespan (schema, relay) running, driven in-process."""
    settings = Settings(
        database_url=database_url, nats_url=nats_url, secret_key=Fernet.generate_key().decode()
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        await sign_up(client)
        yield client


@pytest.fixture
async def owner(client: Client) -> str:
    """The signed-in user's id: what their migrations are recorded under."""
    return str((await client.get("/api/v1/me")).json()["id"])


def connection_form(server: EmbeddedS3, name: str, **changes: str) -> dict[str, str]:
    form = {
        "name": name,
        "endpoint": server.endpoint,
        "region": "us-east-1",
        "access_key": server.access_key,
        "secret_key": server.secret_key,
    }
    return form | changes


async def add_connection(client: Client, server: EmbeddedS3, name: str) -> str:
    """Add a connection through the dashboard's form; its id."""
    response = await client.post(
        "/connections", data=connection_form(server, name), follow_redirects=False
    )
    assert response.status_code == 303, response.text
    listed = (await client.get("/api/v1/connections")).json()
    return next(str(c["id"]) for c in listed if c["name"] == name)


def test_byte_counts_and_percentages_read_as_people_write_them() -> None:
    assert human_bytes(0) == "0 B"
    assert human_bytes(1023) == "1023 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(12 * 1024 * 1024) == "12.0 MiB"
    assert human_bytes(5 * 1024**4) == "5.0 TiB"
    assert percent(1, 3) == "33%"
    assert percent(999, 1000) == "99%"  # never 100% before the last object
    assert percent(0, 0) == "0%"


async def test_the_home_page_lists_nothing_yet_under_the_navigation(client: Client) -> None:
    # When an operator opens the dashboard of a fresh install
    response = await client.get("/")

    # Then the page renders with the navigation and an invitation to start
    assert response.status_code == 200
    html = response.text
    for link in ('href="/"', 'href="/migrations/new"', 'href="/connections"', 'href="/schema"'):
        assert link in html
    assert "<main" in html
    assert "No migrations yet" in html
    assert '<script src="/static/htmx.min.js"' in html
    # And with nothing unfinished there is nothing to poll
    assert "hx-trigger" not in html
    static = await client.get("/static/htmx.min.js")
    assert static.status_code == 200
    assert "Zero-Clause BSD" in static.text[:200]


async def test_the_list_polls_while_a_migration_runs_and_stops_when_all_finish(
    client: Client, database_url: str, owner: str
) -> None:
    # Given one running migration, half its bytes copied, and one finished
    photos = await record_migration(database_url, owner, name="photos")
    await record_migration(database_url, owner, name="archive", status="completed")

    # When the list is shown
    html = (await client.get("/")).text

    # Then each has its progress, in human units, and its failures
    assert "photos" in html
    assert "archive" in html
    assert "12.0 MiB / 24.0 MiB" in html
    assert 'value="1" max="4"' in html
    assert "25%" in html
    # And the table body asks for itself again every second
    assert 'hx-get="/migrations/rows" hx-trigger="every 1s"' in html
    fragment = await client.get("/migrations/rows", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith("<tbody")
    assert "<nav" not in fragment.text

    # When the running one completes too
    completed = migration_event(contracts.MigrationCompleted, photos, copied=1, failed=1)
    await record_events(database_url, completed)
    fragment = await client.get("/migrations/rows", headers={"HX-Request": "true"})

    # Then the fragment that replaces the body no longer polls
    assert "hx-trigger" not in fragment.text


async def test_the_detail_page_shows_live_counts_and_pages_through_objects(
    client: Client, database_url: str, owner: str
) -> None:
    # Given a running migration with 200 objects recorded, a third of them failed (its
    # totals are the objects')
    migration_id = await record_migration(
        database_url, owner, objects_planned=0, bytes_planned=0, objects_copied=0,
        bytes_copied=0, objects_failed=0,
    )  # fmt: skip
    await record_objects(database_url, migration_id, 200)
    here = f"/migrations/{migration_id}"

    # When its page is opened
    html = (await client.get(here)).text

    # Then it shows its counts, times, a progress bar that refreshes itself, and the first objects
    assert "25.9 MiB" in html  # copied: 2048 bytes times each of the copied n < 200
    assert "38.9 MiB" in html  # planned
    assert "Started" in html
    assert f'hx-get="{here}/progress" hx-trigger="every 1s"' in html
    assert "photos/000.jpg" in html
    assert "photos/049.jpg" in html
    assert "photos/050.jpg" not in html
    assert "SlowDown: after 3 attempts" in html

    # When only the failed ones are asked for, then the next page of them
    failed = (await client.get(f"{here}/objects?status=failed")).text
    assert "photos/003.jpg" in failed
    assert "photos/001.jpg" not in failed
    next_link = re.search(r'hx-get="([^"]*cursor=[^"]*)"', failed)
    assert next_link is not None
    second = (await client.get(next_link[1].replace("&amp;", "&"))).text

    # Then the second page continues after the first, still only failed objects
    assert "photos/147.jpg" not in second
    assert "photos/150.jpg" in second
    assert "photos/198.jpg" in second
    assert "photos/199.jpg" not in second

    # When the migration finishes, the last poll stops polling and refreshes the objects once
    failed = migration_event(
        contracts.MigrationFailed, migration_id, reason="unreachable", message="source is down"
    )
    await record_events(database_url, failed)
    # (the api hears of the change by NOTIFY, asynchronously: a loaded machine may take a while)
    progress = await client.get(f"{here}/progress", headers={"HX-Request": "true"})
    for _ in range(50):
        if "hx-trigger" not in progress.text:
            break
        await asyncio.sleep(0.1)
        progress = await client.get(f"{here}/progress", headers={"HX-Request": "true"})
    assert "hx-trigger" not in progress.text
    assert "migration-finished" in progress.headers["HX-Trigger-After-Settle"]


async def test_an_unknown_migration_is_a_page_not_a_trace(client: Client) -> None:
    response = await client.get(f"/migrations/{uuid.uuid4()}")

    assert response.status_code == 404
    assert "does not exist" in response.text
    assert 'href="/connections"' in response.text  # the layout, not JSON
    assert "Traceback" not in response.text


async def test_a_wrong_secret_is_explained_and_nothing_is_saved(
    client: Client, s3_source: EmbeddedS3
) -> None:
    # When a connection is submitted with a secret key the server refuses
    form = connection_form(s3_source, "lyve-prod", secret_key="not-the-secret-1")
    response = await client.post("/connections", data=form)

    # Then the form comes back with a clear error and what was typed, except the secret
    assert response.status_code == 422
    assert 'role="alert"' in response.text
    assert "Connection test failed" in response.text
    assert 'value="lyve-prod"' in response.text
    assert f'value="{s3_source.access_key}"' in response.text
    assert "not-the-secret-1" not in response.text
    # And no connection was saved
    assert (await client.get("/api/v1/connections")).json() == []


async def test_a_blank_field_is_named_in_the_error(client: Client, s3_source: EmbeddedS3) -> None:
    response = await client.post("/connections", data=connection_form(s3_source, "x", endpoint=""))

    assert response.status_code == 422
    assert "Endpoint URL is required for a custom endpoint." in response.text


async def test_a_working_connection_is_saved_and_listed_without_its_secret(
    client: Client, s3_source: EmbeddedS3
) -> None:
    # When a connection with the right keys is submitted
    response = await client.post(
        "/connections", data=connection_form(s3_source, "source"), follow_redirects=False
    )

    # Then the browser is sent to the new connection's page, which says it is saved
    assert response.status_code == 303
    location = response.headers["location"]
    assert re.fullmatch(r"/connections/[0-9a-f-]{36}\?added=1", location)
    landed = (await client.get(location)).text
    assert "<h1>source</h1>" in landed
    assert "The connection works and is saved." in landed
    # And the list shows it
    html = (await client.get("/connections")).text
    assert "source" in html
    assert s3_source.endpoint in html
    # And the secret key appears nowhere
    assert s3_source.secret_key not in html + landed


async def test_a_missing_bucket_is_explained_on_the_migration_form(
    client: Client,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
) -> None:
    # Given two connections
    source_id = await add_connection(client, s3_source, "source")
    destination_id = await add_connection(client, s3_destination, "destination")
    form = {
        "source_connection_id": source_id,
        "source_bucket": "no-such-bucket-here",
        "source_prefix": "",
        "destination_connection_id": destination_id,
        "destination_bucket": make_bucket(s3_destination),
        "destination_prefix": "",
        "name": "",
    }

    # When a migration from a bucket that does not exist is submitted
    response = await client.post("/migrations", data=form)

    # Then the form says which bucket, and keeps the choices made
    assert response.status_code == 422
    assert "source bucket" in response.text
    assert "no-such-bucket-here" in response.text
    assert re.search(rf'value="{source_id}"\s+selected', response.text)

    # And a bucket left blank is named too
    response = await client.post("/migrations", data=form | {"source_bucket": ""})
    assert response.status_code == 422
    assert "Source bucket is required." in response.text


async def test_a_valid_migration_lands_the_user_on_its_page(
    client: Client,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
) -> None:
    # Given two connections and two buckets
    source_id = await add_connection(client, s3_source, "source")
    destination_id = await add_connection(client, s3_destination, "destination")
    source_bucket, destination_bucket = make_bucket(s3_source), make_bucket(s3_destination)

    # When the new-migration form is filled in and sent
    form_page = await client.get("/migrations/new")
    assert form_page.status_code == 200
    assert f'value="{source_id}"' in form_page.text
    response = await client.post(
        "/migrations",
        data={
            "source_connection_id": source_id,
            "source_bucket": source_bucket,
            "destination_connection_id": destination_id,
            "destination_bucket": destination_bucket,
            "name": "first move",
        },
        follow_redirects=False,
    )

    # Then the browser is sent to the migration's own page, which renders
    assert response.status_code == 303
    location = response.headers["location"]
    assert re.fullmatch(r"/migrations/[0-9a-f-]{36}", location)
    page = await client.get(location)
    assert page.status_code == 200
    assert "first move" in page.text
    assert source_bucket in page.text
    assert 'hx-trigger="every 1s"' in page.text  # not finished yet: it keeps itself fresh


def buttons(html: str) -> list[str]:
    """The migration controls a page offers, by the action each one posts to."""
    return re.findall(r'action="/migrations/[0-9a-f-]{36}/([a-z-]+)"', html)


async def test_the_pause_resume_and_cancel_buttons_follow_the_migrations_state(
    client: Client,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
) -> None:
    # Given a migration just requested (no planner runs here, so it stays requested)
    source_id = await add_connection(client, s3_source, "source")
    destination_id = await add_connection(client, s3_destination, "destination")
    created = await client.post(
        "/migrations",
        data={
            "source_connection_id": source_id,
            "source_bucket": make_bucket(s3_source),
            "destination_connection_id": destination_id,
            "destination_bucket": make_bucket(s3_destination),
        },
        follow_redirects=False,
    )
    here = created.headers["location"]

    # Then its page offers Pause and Cancel, not Resume
    assert buttons((await client.get(here)).text) == ["pause", "cancel"]

    # When it is paused from the page
    paused = await client.post(f"{here}/pause", follow_redirects=False)

    # Then the browser comes back to the page, which says so and offers Resume instead
    assert paused.status_code == 303
    assert paused.headers["location"] == f"{here}?done=pause"
    html = (await client.get(paused.headers["location"])).text
    assert "Pausing: copying stops within seconds" in html
    assert buttons(html) == ["resume", "cancel"]
    assert 'class="badge badge-paused"' in html

    # When it is resumed, then cancelled
    resumed = await client.post(f"{here}/resume")
    assert buttons(resumed.text) == ["pause", "cancel"]
    cancelled = await client.post(f"{here}/cancel")

    # Then no button is left, and a late click is explained on the page, not traced
    assert "nothing more is copied" in cancelled.text
    assert buttons(cancelled.text) == []
    late = await client.post(f"{here}/resume")
    assert late.status_code == 409
    assert "is cancelled, not paused" in late.text
    assert 'role="alert"' in late.text
    retried = await client.post(f"{here}/retry-failed")
    assert retried.status_code == 409
    assert "no failed objects to retry" in retried.text
    assert (await client.post(f"{here}/explode")).status_code == 404


async def test_retry_failed_is_offered_once_a_migration_completes_with_failures(
    client: Client, database_url: str, owner: str
) -> None:
    running = await record_migration(database_url, owner, objects_failed=1)
    completed = await record_migration(
        database_url, owner, status="completed", finished_at=datetime.now(UTC)
    )
    clean = await record_migration(
        database_url, owner, status="completed", objects_failed=0, finished_at=datetime.now(UTC)
    )

    assert buttons((await client.get(f"/migrations/{running}")).text) == ["pause", "cancel"]
    html = (await client.get(f"/migrations/{completed}")).text
    assert buttons(html) == ["retry-failed"]
    assert "Retry failed" in html
    assert buttons((await client.get(f"/migrations/{clean}")).text) == []
    # And a paused migration offers Resume, and no time left until it resumes
    paused = await record_migration(database_url, owner, status="paused")
    html = (await client.get(f"/migrations/{paused}")).text
    assert buttons(html) == ["resume", "cancel"]
    assert "<dt>Time left</dt><dd>—</dd>" in html


async def test_the_form_estimates_a_migration_before_it_starts(
    client: Client,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
) -> None:
    # Given a source of three objects, one of them already identical at the destination
    source_id = await add_connection(client, s3_source, "source")
    destination_id = await add_connection(client, s3_destination, "destination")
    source_bucket, destination_bucket = make_bucket(s3_source), make_bucket(s3_destination)
    for key in ("a", "b", "c"):
        s3_client_for(s3_source).put_object(Bucket=source_bucket, Key=key, Body=b"12345")
    s3_client_for(s3_destination).put_object(Bucket=destination_bucket, Key="a", Body=b"12345")
    form = {
        "source_connection_id": source_id,
        "source_bucket": source_bucket,
        "destination_connection_id": destination_id,
        "destination_bucket": destination_bucket,
        "overwrite": "if-different",
    }

    # When the form asks for an estimate (what its "Estimate first" button sends)
    response = await client.post("/migrations/estimate", data=form, headers={"HX-Request": "true"})

    # Then it says what would be copied and skipped, and nothing has started
    assert response.status_code == 200
    assert "would copy <strong>2</strong> objects" in response.text
    assert "skip 1" in response.text
    assert "Nothing has been copied yet" in response.text
    page = await client.get("/")
    assert source_bucket not in page.text
    # And a bad filter value is explained in place
    bad = await client.post(
        "/migrations/estimate",
        data={**form, "overwrite": "sometimes"},
        headers={"HX-Request": "true"},
    )
    assert "When the destination already has the key" in bad.text


async def test_the_forms_filters_storage_class_and_limits_reach_the_migration(
    client: Client,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
) -> None:
    # Given a source of csv files, small and large, some under logs/, and a text file
    source_id = await add_connection(client, s3_source, "source")
    destination_id = await add_connection(client, s3_destination, "destination")
    source_bucket, destination_bucket = make_bucket(s3_source), make_bucket(s3_destination)
    for key, size in {"a.csv": 5, "b.csv": 5000, "c.txt": 5000, "logs/d.csv": 5000}.items():
        s3_client_for(s3_source).put_object(Bucket=source_bucket, Key=key, Body=b"x" * size)
    form = {
        "source_connection_id": source_id,
        "source_bucket": source_bucket,
        "destination_connection_id": destination_id,
        "destination_bucket": destination_bucket,
        "include": "*.csv\r\n\r\n",
        "exclude": "logs/*",
        "min_size": "1 KiB",
        "max_size": "1 MiB",
        "modified_after": "2020-01-31",
        "storage_class": "STANDARD_IA",
        "bandwidth_bytes_per_second": "50 MiB",
        "concurrent_objects": "4",
    }

    # When the form, with its filters, asks for an estimate
    estimate = await client.post("/migrations/estimate", data=form, headers={"HX-Request": "true"})

    # Then only the large csv outside logs/ would be copied
    assert "would copy <strong>1</strong> objects" in estimate.text
    # And a bandwidth limit counts in the time it would take: 5000 bytes at 1 KiB/s
    slow = form | {"bandwidth_bytes_per_second": "1 KiB"}
    estimate = await client.post("/migrations/estimate", data=slow, headers={"HX-Request": "true"})
    assert re.search(r"about\s+5 s\.", estimate.text)

    # When the migration is started
    response = await client.post("/migrations", data=form, follow_redirects=False)

    # Then it is recorded with the filters, storage class and limits, sizes in bytes
    assert response.status_code == 303, response.text
    migration_id = uuid.UUID(response.headers["location"].rsplit("/", 1)[1])
    migration = client.app.state.services.migrations.get(migration_id)
    assert migration.filters == {
        "include": ["*.csv"],
        "exclude": ["logs/*"],
        "min_size": 1024,
        "max_size": 1024 * 1024,
        "modified_after": "2020-01-31T00:00:00+00:00",
    }
    assert migration.storage_class == "STANDARD_IA"
    assert migration.limits == {
        "bandwidth_bytes_per_second": 50 * 1024 * 1024,
        "concurrent_objects": 4,
    }
    # And its page says what was asked for
    shown = re.sub(r"\s+", " ", (await client.get(response.headers["location"])).text)
    assert "<dt>Only keys matching</dt><dd><code>*.csv</code></dd>" in shown
    assert "<dt>Leaving out</dt><dd><code>logs/*</code></dd>" in shown
    assert "<dt>Sizes</dt><dd>1.0 KiB to 1.0 MiB</dd>" in shown
    assert "<dt>Modified</dt><dd>after 2020-01-31 00:00:00 UTC</dd>" in shown
    assert "<dt>Storage class</dt><dd>STANDARD_IA</dd>" in shown
    assert "<dt>Limits</dt><dd>50.0 MiB/s, 4 objects at a time</dd>" in shown


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("modified_after", "last tuesday", "Modified after: 'last tuesday' is not an ISO 8601"),
        ("min_size", "ten", "Smallest size: 'ten' is not a size"),
        ("max_size", "1 KiB", "Largest size: it is smaller than Smallest size."),
        ("include", "*.jpg\n ", None),
        ("concurrent_objects", "0", "Objects at a time: 0 is not a whole number from 1 to"),
        ("concurrent_objects", "many", "Objects at a time: 'many' is not a whole number."),
        ("bandwidth_bytes_per_second", "fast", "Bandwidth limit: 'fast' is not a size"),
        (
            "bandwidth_bytes_per_second",
            "0",
            "Bandwidth limit: 0 is not a whole number from 1 to 1,000,000,000,000,000.",
        ),
        ("storage_class", "COLD", "Storage class: 'COLD' is not an S3 storage class"),
    ],
)
async def test_a_bad_filter_or_limit_is_explained_on_the_form(
    client: Client,
    s3_source: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
    field: str,
    value: str,
    message: str | None,
) -> None:
    # Given a form otherwise right, with a filter of 2 MiB at least
    connection_id = await add_connection(client, s3_source, "lab")
    bucket = make_bucket(s3_source)
    form = {
        "source_connection_id": connection_id,
        "source_bucket": bucket,
        "destination_connection_id": connection_id,
        "destination_bucket": bucket,
        "min_size": "2 MiB",
        field: value,
    }

    # When it is sent
    response = await client.post("/migrations", data=form)

    # Then the form comes back with the message in its words, the values kept, and no trace
    if message is None:  # blank lines among the globs are nothing wrong
        assert response.status_code == 200
        return
    assert response.status_code == 422
    assert 'role="alert"' in response.text
    assert message in html.unescape(response.text)
    assert "filters." not in response.text
    assert "Traceback" not in response.text
    assert value in html.unescape(response.text)
    assert " open>" in response.text  # the part of the form with the problem is open
    assert (await client.get("/api/v1/migrations")).json() == []


# The browser -----------------------------------------------------------------------------


@pytest.mark.browser
def test_an_operator_migrates_a_bucket_from_the_dashboard_in_chromium(
    chromium: Any,
    cstor: RunningCstor,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
) -> None:
    from playwright.sync_api import expect

    # Given a source bucket with a few objects and an empty destination bucket
    source_bucket, destination_bucket = make_bucket(s3_source), make_bucket(s3_destination)
    for n in range(12):
        s3_client_for(s3_source).put_object(
            Bucket=source_bucket, Key=f"docs/{n:02d}.txt", Body=b"x" * 1000 * n
        )
    base = f"http://127.0.0.1:{cstor.settings.api_port}"

    context = chromium.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(20_000)

        # Given an operator who signs up
        page.goto(f"{base}/connections")
        expect(page).to_have_url(re.compile(r"/sign-in\?next=%2Fconnections$"))
        page.get_by_role("link", name="Create an account").click()
        page.get_by_label("Email").fill("operator@example.com")
        page.get_by_label("Password").fill("correct horse battery")
        page.get_by_role("button", name="Sign up").click()
        account = page.get_by_role("navigation", name="Account")
        expect(account).to_contain_text("operator@example.com")

        # When the operator adds the two connections through the form
        for name, server in (("source", s3_source), ("destination", s3_destination)):
            page.get_by_role("navigation", name="Main").get_by_role(
                "link", name="Connections"
            ).click()
            page.get_by_label("Name", exact=True).fill(name)
            page.get_by_label("Endpoint URL").fill(server.endpoint)
            page.get_by_label("Access key").fill(server.access_key)
            page.get_by_label("Secret key").fill(server.secret_key)
            page.get_by_role("button", name="Test and save").click()
            # Then each time they land on the new connection's page
            expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
            assert server.secret_key not in page.content()

        # And starts a migration from the new-migration form
        nav = page.get_by_role("navigation", name="Main")
        nav.get_by_role("link", name="New migration").click()
        page.get_by_label("Source connection").select_option(label=f"source — {s3_source.endpoint}")
        page.get_by_label("Source bucket").fill(source_bucket)
        page.get_by_label("Destination connection").select_option(
            label=f"destination — {s3_destination.endpoint}"
        )
        page.get_by_label("Destination bucket").fill(destination_bucket)
        page.get_by_label("Name").fill("docs to the new store")
        page.get_by_role("button", name="Start migration").click()

        # Then they land on the migration's page, which follows it live to the end
        expect(page).to_have_url(re.compile(r"/migrations/[0-9a-f-]{36}$"))
        expect(page.get_by_role("heading", name="docs to the new store")).to_be_visible()
        progress = page.locator("#progress")
        expect(progress.locator(".badge")).to_have_text("completed", timeout=60_000)
        expect(progress).not_to_have_attribute("hx-trigger", re.compile("."))
        expect(page.get_by_text("docs/11.txt")).to_be_visible()

        # And the list shows it finished, with all twelve objects copied
        nav.get_by_role("link", name="Migrations").click()
        row = page.get_by_role("row", name=re.compile("docs to the new store"))
        expect(row).to_contain_text("12 / 12")
        expect(row).to_contain_text("100%")
    finally:
        context.close()
