"""The dashboard's polish in Debian's Chromium: the new-migration form offers the chosen
connection's buckets, and the migration's throughput chart has labelled axes with units."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from launcher.embedded import EmbeddedS3
from tests.stack import RunningCstor, s3_client_for


@pytest.mark.browser
def test_bucket_options_after_choosing_a_connection_and_chart_axes_in_chromium(
    chromium: Any,
    cstor: RunningCstor,
    s3_source: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
) -> None:
    from playwright.sync_api import expect

    # Given a bucket of a few objects and another, empty, on the same server
    source_bucket, destination_bucket = make_bucket(s3_source), make_bucket(s3_source)
    for n in range(6):
        s3_client_for(s3_source).put_object(
            Bucket=source_bucket, Key=f"polish/{n}.bin", Body=b"x" * 20_000 * (n + 1)
        )
    base = f"http://127.0.0.1:{cstor.settings.api_port}"
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.goto(f"{base}/sign-up")
        page.get_by_label("Email").fill("polish@example.com")
        page.get_by_label("Password").fill("correct horse battery")
        page.get_by_role("button", name="Sign up").click()
        expect(page.get_by_role("navigation", name="Account")).to_contain_text("polish@")
        page.goto(f"{base}/connections")
        page.get_by_label("Name", exact=True).fill("lab")
        page.get_by_label("Endpoint URL").fill(s3_source.endpoint)
        page.get_by_label("Access key").fill(s3_source.access_key)
        page.get_by_label("Secret key").fill(s3_source.secret_key)
        page.get_by_role("button", name="Test and save").click()
        expect(page.get_by_role("heading", name="lab", exact=True)).to_be_visible()

        # When a connection is chosen on the new-migration form
        page.goto(f"{base}/migrations/new")
        page.get_by_label("Source connection").select_option(label=f"lab — {s3_source.endpoint}")

        # Then the source bucket field offers that connection's buckets
        expect(
            page.locator(f'#source_bucket-choices option[value="{source_bucket}"]')
        ).to_have_count(1)
        expect(
            page.locator(f'#source_bucket-choices option[value="{destination_bucket}"]')
        ).to_have_count(1)
        expect(page.get_by_label("Source bucket")).to_have_attribute(
            "list", "source_bucket-choices"
        )

        # And free text is still taken: the migration starts with typed names
        page.get_by_label("Source bucket").fill(source_bucket)
        page.get_by_label("Destination connection").select_option(
            label=f"lab — {s3_source.endpoint}"
        )
        page.get_by_label("Destination bucket").fill(destination_bucket)
        page.get_by_label("Name").fill("polish")
        page.get_by_role("button", name="Start migration").click()
        expect(page).to_have_url(re.compile(r"/migrations/[0-9a-f-]{36}$"))
        progress = page.locator("#progress")
        expect(progress.locator(".badge")).to_have_text("completed", timeout=60_000)

        # And its throughput chart has labelled axes with units
        chart = page.locator("figure.chart svg")
        expect(chart.locator("text", has_text="Time since start")).to_have_count(1)
        expect(
            chart.locator("text", has_text=re.compile(r"^Throughput \((B|KiB|MiB|GiB)/s\)$"))
        ).to_have_count(1)
        assert chart.locator("text.tick").count() == 6
    finally:
        context.close()
