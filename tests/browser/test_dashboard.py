"""The HTMX dashboard end to end in Debian's Chromium: an operator signs up, adds two
connections and migrates a bucket (its pages and forms in-process are
tests/integration/test_dashboard_pages.py and test_dashboard_forms.py)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from launcher.embedded import EmbeddedS3
from tests.stack import RunningCstor, s3_client_for


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
