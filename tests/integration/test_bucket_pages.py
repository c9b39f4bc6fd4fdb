"""The Buckets pages: each connection's buckets, and a bucket's scan by prefix, in-process
on real Postgres, NATS and S3 servers."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from litestar.testing import AsyncTestClient

from launcher.embedded import EmbeddedS3
from tests.connection_forms import add_connection
from tests.sessions import forget, sign_up
from tests.stack import s3_client_for

Client = AsyncTestClient[Any]
HTMX = {"HX-Request": "true"}


async def test_the_buckets_page_lists_each_connections_buckets_as_links_to_scans(
    client: Client, s3_source: EmbeddedS3, make_bucket: Callable[[EmbeddedS3], str]
) -> None:
    # Given a connection whose keys see a bucket
    bucket = make_bucket(s3_source)
    connection_id = await add_connection(client, s3_source, "lab")

    # When the Buckets page is opened from the navigation
    index = await client.get("/buckets")

    # Then it names the connection and fetches its buckets once shown
    assert index.status_code == 200
    assert 'href="/buckets" aria-current="page"' in index.text
    assert f'hx-get="/buckets/{connection_id}" hx-trigger="load"' in index.text
    listed = await client.get(f"/buckets/{connection_id}", headers=HTMX)
    assert f'href="/buckets/{connection_id}/{bucket}"' in listed.text
    # And the connection's own page links its buckets to their scans too
    own = await client.get(f"/connections/{connection_id}")
    assert f'href="/buckets/{connection_id}/{bucket}"' in own.text


async def test_a_scan_counts_objects_and_bytes_by_top_level_prefix_and_drills_down(
    client: Client, s3_source: EmbeddedS3, make_bucket: Callable[[EmbeddedS3], str]
) -> None:
    # Given a bucket of 3 photos, 2 logs (one a level deeper) and one object at the top
    bucket = make_bucket(s3_source)
    s3 = s3_client_for(s3_source)
    for key, size in {
        "photos/a.jpg": 1024,
        "photos/b.jpg": 2048,
        "photos/c.jpg": 1024,
        "logs/2024/x.log": 100,
        "logs/y.log": 300,
        "README": 76,
    }.items():
        s3.put_object(Bucket=bucket, Key=key, Body=b"x" * size)
    connection_id = await add_connection(client, s3_source, "lab")
    here = f"/buckets/{connection_id}/{bucket}"

    # When its page is opened, and the scan it loads
    shell = await client.get(here)
    scan = (await client.get(f"{here}/scan", headers=HTMX)).text

    # Then the page names the bucket and fetches the scan; the scan has the totals
    assert f"<h1>{bucket}" in shell.text
    assert f'hx-get="{here}/scan" hx-trigger="load"' in shell.text
    compact = re.sub(r"\s+", " ", scan)
    assert "<dt>Objects</dt><dd>6</dd>" in compact
    assert "<dt>Total size</dt><dd>4.5 KiB</dd>" in compact
    assert "<dt>Prefixes</dt><dd>2</dd>" in compact
    # And a row per top-level prefix, linked to its own scan, with its share of the bytes
    assert re.search(
        rf'href="{here}\?prefix=photos%2F"><code>photos/</code></a></th>'
        r'\s*<td class="num">3</td>\s*<td class="num">4.0 KiB</td>',
        scan,
    )
    assert re.search(r'<td class="num">2</td>\s*<td class="num">400 B</td>', scan)
    assert "Objects directly at the top" in scan
    assert "89%" in scan  # photos/: 4096 of 4572 bytes

    # When the logs/ prefix is opened
    logs = await client.get(f"{here}?prefix=logs/")
    logs_scan = (await client.get(f"{here}/scan?prefix=logs/", headers=HTMX)).text

    # Then it scans only that prefix, one level down, with a way back up
    assert f'href="{here}">Up to the whole bucket</a>' in logs.text
    assert "<dt>Objects</dt><dd>2</dd>" in re.sub(r"\s+", " ", logs_scan)
    assert "<code>logs/2024/</code>" in logs_scan
    assert "Objects directly under <code>logs/</code>" in logs_scan
    assert "photos/" not in logs_scan


async def test_scan_problems_are_explained_and_other_users_connections_do_not_exist(
    client: Client, s3_source: EmbeddedS3
) -> None:
    connection_id = await add_connection(client, s3_source, "lab")

    # A bucket that does not exist is explained in place of the scan
    missing = await client.get(f"/buckets/{connection_id}/no-such-bucket-9/scan", headers=HTMX)
    assert missing.status_code == 200
    assert 'role="alert"' in missing.text
    assert "cannot be scanned" in missing.text
    assert "Traceback" not in missing.text

    # An unknown connection is a page that says so
    unknown = await client.get(f"/buckets/{uuid.uuid4()}/anything")
    assert unknown.status_code == 404
    assert "does not exist" in unknown.text

    # And another user sees neither the connection nor its buckets
    forget(client)
    await sign_up(client)
    assert (await client.get(f"/buckets/{connection_id}", headers=HTMX)).status_code == 404
    assert (await client.get(f"/buckets/{connection_id}/x/scan", headers=HTMX)).status_code == 404
    assert ">lab<" not in (await client.get("/buckets")).text


async def test_the_new_migration_form_offers_the_chosen_connections_buckets(
    client: Client, s3_source: EmbeddedS3, make_bucket: Callable[[EmbeddedS3], str]
) -> None:
    # Given a connection whose keys see a bucket
    bucket = make_bucket(s3_source)
    connection_id = await add_connection(client, s3_source, "lab")

    # When the new-migration form is opened
    form = (await client.get("/migrations/new")).text

    # Then choosing a connection fetches its buckets into the bucket field's datalist
    assert 'hx-get="/buckets/choices/source_bucket-choices"' in form
    assert 'list="source_bucket-choices"' in form
    assert 'list="destination_bucket-choices"' in form
    assert 'id="destination_bucket-choices-box"' in form
    choices = await client.get(
        "/buckets/choices/source_bucket-choices",
        params={"source_connection_id": connection_id},
        headers=HTMX,
    )
    assert choices.status_code == 200
    assert '<datalist id="source_bucket-choices">' in choices.text
    assert f'<option value="{bucket}"></option>' in choices.text
    assert 'role="alert"' not in choices.text
    # And before a connection is chosen, the list is empty and says nothing is wrong
    none = await client.get("/buckets/choices/source_bucket-choices", headers=HTMX)
    assert "<option" not in none.text
    assert 'role="alert"' not in none.text


async def test_bucket_choices_that_cannot_be_listed_say_why_inline(client: Client) -> None:
    # When the form asks for the buckets of a connection that does not exist, or for a
    # malformed id or field
    missing = uuid.uuid4()
    gone = await client.get(
        "/buckets/choices/destination_bucket-choices",
        params={"destination_connection_id": str(missing)},
        headers=HTMX,
    )
    malformed = await client.get(
        "/buckets/choices/source_bucket-choices",
        params={"source_connection_id": "nope"},
        headers=HTMX,
    )
    unknown = await client.get("/buckets/choices/other", headers=HTMX)

    # Then each answers an inline message, free text still allowed, never a stack trace
    assert gone.status_code == 200
    assert f"Connection {missing} does not exist. You can still type a bucket name" in gone.text
    assert '<datalist id="destination_bucket-choices">' in gone.text
    assert "&#39;nope&#39; is not a connection id" in malformed.text
    assert "no form field" in unknown.text
    for answer in (gone, malformed, unknown):
        assert 'role="alert"' in answer.text
        assert "Traceback" not in answer.text
