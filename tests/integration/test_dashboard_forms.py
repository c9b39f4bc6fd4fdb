"""The dashboard's forms: a connection tested and saved, and a new migration estimated,
checked and started, in-process on real Postgres, NATS and S3 servers (the api's client
and the route of two connections come from tests/integration/conftest.py)."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from launcher.embedded import EmbeddedS3
from tests.connection_forms import add_connection, connection_form
from tests.stack import s3_client_for

Client = AsyncTestClient[Any]


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
    client: Client, route_form: dict[str, str]
) -> None:
    # Given two connections
    source_id = route_form["source_connection_id"]
    form = route_form | {
        "source_bucket": "no-such-bucket-here",
        "source_prefix": "",
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
    client: Client, route_form: dict[str, str]
) -> None:
    # Given two connections and two buckets
    source_id, source_bucket = route_form["source_connection_id"], route_form["source_bucket"]

    # When the new-migration form is filled in and sent
    form_page = await client.get("/migrations/new")
    assert form_page.status_code == 200
    assert f'value="{source_id}"' in form_page.text
    response = await client.post(
        "/migrations",
        data=route_form | {"name": "first move"},
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


async def test_the_form_estimates_a_migration_before_it_starts(
    client: Client,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    route_form: dict[str, str],
) -> None:
    # Given a source of three objects, one of them already identical at the destination
    source_bucket = route_form["source_bucket"]
    destination_bucket = route_form["destination_bucket"]
    for key in ("a", "b", "c"):
        s3_client_for(s3_source).put_object(Bucket=source_bucket, Key=key, Body=b"12345")
    s3_client_for(s3_destination).put_object(Bucket=destination_bucket, Key="a", Body=b"12345")
    form = route_form | {"overwrite": "if-different"}

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
    client: Client, s3_source: EmbeddedS3, route_form: dict[str, str]
) -> None:
    # Given a source of csv files, small and large, some under logs/, and a text file
    source_bucket = route_form["source_bucket"]
    for key, size in {"a.csv": 5, "b.csv": 5000, "c.txt": 5000, "logs/d.csv": 5000}.items():
        s3_client_for(s3_source).put_object(Bucket=source_bucket, Key=key, Body=b"x" * size)
    form = route_form | {
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
