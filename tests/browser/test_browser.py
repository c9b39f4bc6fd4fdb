"""The dashboard in Debian's Chromium: accounts, connections, a migration to the end, the
report, isolation between users. With CSTOR_SCREENSHOTS=<folder> it saves screenshots of
the main pages there (the README's come from `CSTOR_SCREENSHOTS=docs/screenshots`)."""

from __future__ import annotations

import csv
import io
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from launcher.embedded import EmbeddedS3
from tests.stack import RunningCstor, s3_client_for

PASSWORD = "correct horse battery"

pytestmark = [
    pytest.mark.stack(packet_max_objects=50, transfer_concurrency=2),
    pytest.mark.browser,
]


@pytest.fixture
def new_page(chromium: Any, module_cstor: RunningCstor) -> Iterator[Callable[[], Any]]:
    """Opens a page in a browser context of its own (its own cookies: its own person)."""
    contexts = []

    def open_page() -> Any:
        context = chromium.new_context(
            base_url=f"http://127.0.0.1:{module_cstor.settings.api_port}",
            viewport={"width": 1200, "height": 860},
            accept_downloads=True,
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(20_000)
        return page

    yield open_page
    for context in contexts:
        context.close()


def screenshot(page: Any, name: str) -> None:
    folder = os.environ.get("CSTOR_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def sign_up(page: Any, email: str) -> None:
    from playwright.sync_api import expect

    page.goto("/sign-up")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("navigation", name="Account")).to_contain_text(email)


def add_connection(page: Any, name: str, server: EmbeddedS3) -> None:
    from playwright.sync_api import expect

    page.goto("/connections")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Endpoint URL").fill(server.endpoint)
    page.get_by_label("Access key").fill(server.access_key)
    page.get_by_label("Secret key").fill(server.secret_key)
    page.get_by_role("button", name="Test and save").click()
    # Saved, the user lands on the new connection's page
    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("saved")


def start_migration(page: Any, name: str, source: tuple[str, str], dest: tuple[str, str]) -> None:
    page.goto("/migrations/new")
    page.get_by_label("Source connection").select_option(label=source[0])
    page.get_by_label("Source bucket").fill(source[1])
    page.get_by_label("Destination connection").select_option(label=dest[0])
    page.get_by_label("Destination bucket").fill(dest[1])
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Start migration").click()


def seed(server: EmbeddedS3, bucket: str, count: int) -> None:
    client = s3_client_for(server)
    for n in range(count):
        client.put_object(Bucket=bucket, Key=f"reports/{n:02d}.csv", Body=b"r" * (700 * n + 1))


def test_an_operator_migrates_watches_it_finish_and_downloads_the_report(
    new_page: Callable[[], Any],
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
) -> None:
    from playwright.sync_api import expect

    # Given a source bucket of 15 objects and an empty destination
    source_bucket, destination_bucket = make_bucket(s3_source), make_bucket(s3_destination)
    seed(s3_source, source_bucket, 15)
    page = new_page()

    # When an operator signs up, adds both connections and starts a migration
    page.goto("/sign-up")
    screenshot(page, "sign-up")
    sign_up(page, f"ops-{uuid.uuid4().hex[:6]}@example.com")
    add_connection(page, "lyve-source", s3_source)
    add_connection(page, "archive", s3_destination)
    page.goto("/connections")
    screenshot(page, "connections")
    page.goto("/migrations/new")
    page.get_by_label("Source connection").select_option(
        label=f"lyve-source — {s3_source.endpoint}"
    )
    page.get_by_label("Source bucket").fill(source_bucket)
    page.get_by_label("Destination connection").select_option(
        label=f"archive — {s3_destination.endpoint}"
    )
    page.get_by_label("Destination bucket").fill(destination_bucket)
    page.get_by_label("Name").fill("quarterly reports")
    page.locator("summary", has_text="Filters").click()
    page.get_by_label("Include").fill("*.csv")
    screenshot(page, "new-migration")
    page.get_by_role("button", name="Start migration").click()

    # Then they land on it, and watch it complete with every object copied
    expect(page).to_have_url(re.compile(r"/migrations/[0-9a-f-]{36}$"))
    progress = page.locator("#progress")
    expect(progress.locator(".badge")).to_have_text("completed", timeout=60_000)
    expect(progress).to_contain_text("15 objects")
    expect(page.get_by_text("reports/14.csv")).to_be_visible()
    screenshot(page, "migration-detail")

    # And the report downloads with every object copied and its checksum
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert len(rows) == 15
    assert {row["status"] for row in rows} == {"copied"}
    assert all(row["checksum"].startswith("md5") for row in rows)

    # And the list shows it finished, 15 of 15
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Migrations").click()
    row = page.get_by_role("row", name=re.compile("quarterly reports"))
    expect(row).to_contain_text("15 / 15")
    expect(row).to_contain_text("100%")
    screenshot(page, "migrations")


def test_the_navigation_follows_sign_in_and_sign_out_at_once(
    new_page: Callable[[], Any],
) -> None:
    from playwright.sync_api import expect

    page = new_page()
    email = f"nav-{uuid.uuid4().hex[:6]}@example.com"
    account = page.get_by_role("navigation", name="Account")

    # Given a visitor: a page sends them to sign in, and the navigation offers it
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/sign-in\?next=%2F$"))
    expect(account.get_by_role("link", name="Sign in")).to_be_visible()
    screenshot(page, "sign-in")

    # When they sign up, the very next page names them and offers Sign out
    sign_up(page, email)
    expect(account.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Connections"))

    # When they sign out
    account.get_by_role("button", name="Sign out").click()

    # Then they are on the sign-in page, no longer named, and pages need signing in again
    expect(page).to_have_url(re.compile(r"/sign-in$"))
    expect(account).not_to_contain_text(email)
    expect(account.get_by_role("link", name="Sign in")).to_be_visible()
    page.goto("/connections")
    expect(page).to_have_url(re.compile(r"/sign-in\?next=%2Fconnections$"))

    # When they sign in again, they come back to the page they asked for, named again
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/connections$"))
    expect(account).to_contain_text(email)


def test_a_wrong_password_is_explained_on_the_sign_in_page(
    new_page: Callable[[], Any],
) -> None:
    from playwright.sync_api import expect

    page = new_page()
    email = f"pw-{uuid.uuid4().hex[:6]}@example.com"
    sign_up(page, email)
    page.get_by_role("button", name="Sign out").click()

    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("alert")).to_contain_text("do not match")
    expect(page.get_by_label("Email")).to_have_value(email)


def test_one_user_cannot_see_another_users_migration(
    new_page: Callable[[], Any],
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
) -> None:
    from playwright.sync_api import expect

    # Given Alice with a connection and a migration
    source_bucket, destination_bucket = make_bucket(s3_source), make_bucket(s3_destination)
    seed(s3_source, source_bucket, 2)
    alice = new_page()
    sign_up(alice, f"alice-{uuid.uuid4().hex[:6]}@example.com")
    add_connection(alice, "alice-source", s3_source)
    add_connection(alice, "alice-destination", s3_destination)
    start_migration(
        alice,
        "alice's move",
        (f"alice-source — {s3_source.endpoint}", source_bucket),
        (f"alice-destination — {s3_destination.endpoint}", destination_bucket),
    )
    expect(alice).to_have_url(re.compile(r"/migrations/[0-9a-f-]{36}$"))
    migration_url = alice.url

    # When Bob, in another browser, signs up and opens Alice's migration by its address
    bob = new_page()
    sign_up(bob, f"bob-{uuid.uuid4().hex[:6]}@example.com")
    response = bob.goto(migration_url)

    # Then it does not exist for him, and none of hers are listed
    assert response is not None
    assert response.status == 404
    expect(bob.get_by_role("main")).to_contain_text("does not exist")
    bob.goto("/")
    expect(bob.get_by_role("main")).not_to_contain_text("alice's move")
    bob.goto("/connections")
    expect(bob.get_by_role("main")).not_to_contain_text("alice-source")


def test_an_api_token_is_shown_once_and_can_be_revoked(new_page: Callable[[], Any]) -> None:
    from playwright.sync_api import expect

    page = new_page()
    sign_up(page, f"ci-{uuid.uuid4().hex[:6]}@example.com")

    # When a token is made on the account page
    page.get_by_role("navigation", name="Account").get_by_role("link").first.click()
    page.get_by_label("Token name").fill("nightly-ci")
    page.get_by_role("button", name="Create token").click()

    # Then it is shown once
    shown = page.locator("code.token")
    expect(shown).to_contain_text("cstor_")
    token = shown.inner_text()
    screenshot(page, "account")
    # And reloading the page neither shows it again nor makes a second token
    page.reload()
    expect(page.locator("code.token")).to_have_count(0)
    assert token not in page.content()
    expect(page.get_by_role("row", name=re.compile("nightly-ci"))).to_have_count(1)

    # And revoking it takes it off the list
    page.get_by_role("button", name="Revoke nightly-ci").click()
    expect(page.get_by_role("main")).to_contain_text("No API tokens yet")


def test_a_connection_page_lists_buckets_and_refuses_a_bad_rotation(
    new_page: Callable[[], Any], s3_source: EmbeddedS3, make_bucket: Callable[[EmbeddedS3], str]
) -> None:
    from playwright.sync_api import expect

    bucket = make_bucket(s3_source)
    page = new_page()
    sign_up(page, f"conn-{uuid.uuid4().hex[:6]}@example.com")
    add_connection(page, "lab", s3_source)

    # When the connection is opened from the list, its buckets are listed
    page.goto("/connections")
    page.get_by_role("link", name="lab").click()
    expect(page.get_by_role("heading", name="lab")).to_be_visible()
    expect(page.get_by_text(bucket)).to_be_visible()
    screenshot(page, "connection")

    # When a wrong new secret is offered, it is refused and the old keys stay
    page.get_by_label("New secret key").fill("definitely-wrong-1")
    page.get_by_role("button", name="Test and rotate").click()
    expect(page.get_by_role("alert")).to_contain_text("not saved")
    expect(page.get_by_text(bucket)).to_be_visible()
    assert "definitely-wrong-1" not in page.content()


def destination_state(server: EmbeddedS3, bucket: str) -> dict[str, Any]:
    """Each key at the destination with when it was written: a rewrite changes it."""
    pages = s3_client_for(server).get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {
        obj["Key"]: (obj["LastModified"], obj["ETag"])
        for page in pages
        for obj in page.get("Contents", [])
    }


def stat(page: Any, label: str) -> Any:
    """One figure of the progress card, by its label ("Copied", "Failed", ...)."""
    figure = page.locator("#progress .stats > div", has=page.locator("dt", has_text=label))
    return figure.locator("dd")


def objects(count: int) -> re.Pattern[str]:
    """A figure that starts with this many objects (and not, say, ten times as many)."""
    return re.compile(rf"^{count} objects")


def test_an_operator_pauses_and_resumes_a_migration_from_its_page(
    module_cstor: RunningCstor,
    new_page: Callable[[], Any],
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
) -> None:
    from playwright.sync_api import expect

    # Given a migration of 300 objects, part of the way through: copying is fast here, so
    # the transfer service is stopped once 20 are copied, to hold it mid-run for the clicks
    source_bucket, destination_bucket = make_bucket(s3_source), make_bucket(s3_destination)
    client = s3_client_for(s3_source)
    for n in range(300):
        client.put_object(Bucket=source_bucket, Key=f"p/{n:04d}", Body=bytes([n % 256]) * 131072)
    page = new_page()
    sign_up(page, f"pause-{uuid.uuid4().hex[:6]}@example.com")
    add_connection(page, "big-source", s3_source)
    add_connection(page, "big-destination", s3_destination)
    transfer = module_cstor.services.processes["transfer"]
    try:
        start_migration(
            page,
            "big move",
            (f"big-source — {s3_source.endpoint}", source_bucket),
            (f"big-destination — {s3_destination.endpoint}", destination_bucket),
        )
        deadline = time.monotonic() + 60
        while len(destination_state(s3_destination, destination_bucket)) < 20:
            assert time.monotonic() < deadline, "copying never started"
            time.sleep(0.05)
        transfer.terminate()
        transfer.wait()
        badge = page.locator("#progress .badge")
        expect(badge).to_have_text("running")
        expect(stat(page, "Copied")).to_have_text(re.compile(r"^[1-9]"))
        assert len(destination_state(s3_destination, destination_bucket)) < 300

        # When the operator clicks Pause (and copying could go on again)
        expect(page.get_by_role("button", name="Resume")).to_have_count(0)
        page.get_by_role("button", name="Pause").click()
    finally:
        module_cstor.services.restart_exited()

    # Then the page says so, and offers Resume and Cancel in place of Pause
    expect(page.get_by_role("status")).to_contain_text("Pausing")
    expect(badge).to_have_text("paused")
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel migration")).to_be_visible()
    expect(page.get_by_role("button", name="Pause")).to_have_count(0)
    screenshot(page, "migration-paused")

    # And nothing more is copied while it is paused
    at_pause = destination_state(s3_destination, destination_bucket)
    time.sleep(8)
    assert destination_state(s3_destination, destination_bucket) == at_pause
    assert len(at_pause) < 300

    # When Resume is clicked
    page.get_by_role("button", name="Resume").click()

    # Then it runs on to the end: every object copied, none failed, no button left
    expect(badge).to_have_text("completed", timeout=180_000)
    expect(stat(page, "Copied")).to_have_text(objects(300))
    expect(stat(page, "Failed")).to_have_text(objects(0))
    expect(page.locator("#progress").get_by_role("button")).to_have_count(0)
    # And the objects copied before the pause were not written again
    after = destination_state(s3_destination, destination_bucket)
    assert len(after) == 300
    assert all(after[key] == seen for key, seen in at_pause.items())


def test_an_operator_retries_failed_objects_from_the_migrations_page(
    module_cstor: RunningCstor,
    new_page: Callable[[], Any],
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
) -> None:
    from playwright.sync_api import expect

    # Given a source of 10 objects, and a migration planned while nothing copies
    source_bucket, destination_bucket = make_bucket(s3_source), make_bucket(s3_destination)
    client = s3_client_for(s3_source)
    for n in range(10):
        client.put_object(Bucket=source_bucket, Key=f"r/{n}", Body=b"body %d" % n)
    page = new_page()
    sign_up(page, f"retry-{uuid.uuid4().hex[:6]}@example.com")
    add_connection(page, "flaky-source", s3_source)
    add_connection(page, "safe-destination", s3_destination)
    transfer = module_cstor.services.processes["transfer"]
    transfer.terminate()
    transfer.wait()
    try:
        start_migration(
            page,
            "flaky move",
            (f"flaky-source — {s3_source.endpoint}", source_bucket),
            (f"safe-destination — {s3_destination.endpoint}", destination_bucket),
        )
        expect(page.locator("#progress .badge")).to_have_text("running", timeout=60_000)
        expect(stat(page, "Planned")).to_have_text(objects(10))

        # When two source objects vanish before they are copied
        client.delete_object(Bucket=source_bucket, Key="r/3")
        client.delete_object(Bucket=source_bucket, Key="r/7")
    finally:
        module_cstor.services.restart_exited()

    # Then it completes with those two failed, each with its reason, and offers a retry
    expect(page.locator("#progress .badge")).to_have_text("completed", timeout=60_000)
    expect(stat(page, "Copied")).to_have_text(objects(8))
    expect(stat(page, "Failed")).to_have_text(objects(2))
    expect(page.locator("#objects")).to_contain_text("source-missing")
    retry = page.get_by_role("button", name="Retry failed")
    expect(retry).to_be_visible()
    screenshot(page, "migration-failures")

    # When the objects are back and Retry failed is clicked
    client.put_object(Bucket=source_bucket, Key="r/3", Body=b"body 3")
    client.put_object(Bucket=source_bucket, Key="r/7", Body=b"changed since")
    retry.click()

    # Then the page says so, and the migration completes with all ten copied, none failed
    expect(page.get_by_role("status")).to_contain_text("queued to be copied again")
    expect(stat(page, "Copied")).to_have_text(objects(10), timeout=60_000)
    expect(page.locator("#progress .badge")).to_have_text("completed")
    expect(stat(page, "Failed")).to_have_text(objects(0))
    expect(page.get_by_role("button", name="Retry failed")).to_have_count(0)
    destination = s3_client_for(s3_destination)
    body = destination.get_object(Bucket=destination_bucket, Key="r/7")["Body"].read()
    assert body == b"changed since"


def test_an_operator_scans_a_bucket_from_the_buckets_page(
    new_page: Callable[[], Any], s3_source: EmbeddedS3, make_bucket: Callable[[EmbeddedS3], str]
) -> None:
    from playwright.sync_api import expect

    # Given a connection to a bucket of 12 reports and 3 photos
    bucket = make_bucket(s3_source)
    seed(s3_source, bucket, 12)
    client = s3_client_for(s3_source)
    for n in range(3):
        client.put_object(Bucket=bucket, Key=f"photos/2024/{n}.jpg", Body=b"p" * 4096)
    page = new_page()
    sign_up(page, f"scan-{uuid.uuid4().hex[:6]}@example.com")
    add_connection(page, "lake", s3_source)

    # When the operator opens Buckets from the navigation, then the bucket
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Buckets").click()
    page.get_by_role("link", name=bucket).click()

    # Then the scan shows the totals and a row per top-level prefix
    scan = page.locator("#scan")
    expect(scan.locator(".stats")).to_contain_text("15")
    photos = page.get_by_role("row", name=re.compile(r"^photos\/"))
    expect(photos).to_contain_text("12.0 KiB")
    expect(page.get_by_role("row", name=re.compile(r"^reports\/"))).to_contain_text("12")
    screenshot(page, "bucket-scan")

    # When a prefix is opened, the scan goes one level down, and back up
    photos.get_by_role("link").click()
    expect(page.get_by_role("row", name=re.compile(r"^photos\/2024\/"))).to_contain_text("3")
    page.get_by_role("link", name="Up to the whole bucket").click()
    expect(page.get_by_role("row", name=re.compile(r"^reports\/"))).to_be_visible()
    page.goto("/buckets")
    expect(page.get_by_role("link", name=bucket)).to_be_visible()
    screenshot(page, "buckets")
