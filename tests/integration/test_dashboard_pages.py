"""The dashboard's migration pages: the list and a migration's page polling while it runs,
its objects paged through, and the controls its state offers, in-process on real Postgres,
NATS and S3 servers (the api's client and the route of two connections come from
tests/integration/conftest.py)."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from litestar.testing import AsyncTestClient

from cstor import contracts
from tests.readmodel_rows import migration_event, record_events, record_migration, record_objects

Client = AsyncTestClient[Any]


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
    ended = migration_event(
        contracts.MigrationFailed, migration_id, reason="unreachable", message="source is down"
    )
    await record_events(database_url, ended)
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


def buttons(html: str) -> list[str]:
    """The migration controls a page offers, by the action each one posts to."""
    return re.findall(r'action="/migrations/[0-9a-f-]{36}/([a-z-]+)"', html)


async def test_the_pause_resume_and_cancel_buttons_follow_the_migrations_state(
    client: Client, route_form: dict[str, str]
) -> None:
    # Given a migration just requested (no planner runs here, so it stays requested)
    created = await client.post("/migrations", data=route_form, follow_redirects=False)
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
