"""Hostile input is refused at the edge with a clear 4xx naming the field, never a 500.

REST answers problem+json whose ``errors`` name the field (``key``) and where it came
from (``source``: body, query or path); the dashboard's forms answer a page saying which
field is wrong. In-process on real Postgres, NATS and rclone S3 servers.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from litestar.testing import AsyncTestClient

from cstor.domain.bucket_names import check_bucket_name
from cstor.domain.exceptions import InvalidRequest
from cstor.settings import Settings
from launcher.embedded import EmbeddedPostgres, EmbeddedS3, free_port, start_nats
from services.api.app import create_app
from services.api.connections.presets import PresetError, endpoint_for
from services.api.edge import MAX_JSON_DEPTH, json_depth
from services.api.migrations.form import parse_size
from tests.connection_forms import connection_body
from tests.sessions import PASSWORD, new_email, sign_up
from tests.stack import create_database, s3_client_for

Client = AsyncTestClient[Any]
BAD_BUCKETS = [
    "a..b",
    "ab",
    "-abc",
    "abc-",
    "abc.",
    "192.168.5.4",
    "xn--abc",
    "sthree-abc",
    "abc-s3alias",
    "abc--ol-s3",
    "a/b",
    "a b",
    "abc\\d",
]
TOO_LONG = "x" * 256  # past the schema's 255 characters: a 400 naming the field, as any


@dataclass
class Edge:
    """The api in-process, a signed-in session (for forms) and an API token (for REST)."""

    client: Client
    rest: dict[str, str]
    source_id: str
    destination_id: str
    source_bucket: str
    destination_bucket: str
    migration_id: str

    def migration(self, **changes: Any) -> dict[str, Any]:
        """A migration request that would be accepted, with ``changes``."""
        return {
            "source_connection_id": self.source_id,
            "source_bucket": self.source_bucket,
            "destination_connection_id": self.destination_id,
            "destination_bucket": self.destination_bucket,
        } | changes

    def form(self, **changes: str) -> dict[str, str]:
        """The new-migration form filled in as a user would, with ``changes``."""
        return {
            "source_connection_id": self.source_id,
            "source_bucket": self.source_bucket,
            "destination_connection_id": self.destination_id,
            "destination_bucket": self.destination_bucket,
            "name": "",
        } | changes

    async def post_json(self, path: str, body: Any) -> httpx.Response:
        """POST ``body`` as JSON with the \\u escapes Python writes (a lone surrogate too)."""
        return await self.client.post(
            path,
            content=json.dumps(body).encode(),
            headers=self.rest | {"content-type": "application/json"},
        )

    async def connection_count(self) -> int:
        return len((await self.client.get("/api/v1/connections", headers=self.rest)).json())


@pytest.fixture(scope="module")
async def edge(
    embedded_postgres: EmbeddedPostgres,
    tmp_path_factory: pytest.TempPathFactory,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
) -> AsyncIterator[Edge]:
    # One app for the module: every refused request here must leave nothing behind anyway.
    data_dir = tmp_path_factory.mktemp("hostile")
    with start_nats(data_dir / "nats", free_port()) as nats:
        settings = Settings(
            database_url=create_database(embedded_postgres),
            nats_url=nats.url,
            secret_key=Fernet.generate_key().decode(),
        )
        async with AsyncTestClient(app=create_app(settings)) as client:
            email = await sign_up(client)
            created = await client.post(
                "/api/v1/tokens", json={"name": "tests"}, auth=(email, PASSWORD)
            )
            assert created.status_code == 201, created.text
            rest = {"Authorization": f"Bearer {created.json()['token']}"}
            ids = []
            for server, name in ((s3_source, "source"), (s3_destination, "destination")):
                response = await client.post(
                    "/api/v1/connections",
                    json=connection_body(server, name),
                    headers=rest,
                )
                assert response.status_code == 201, response.text
                ids.append(response.json()["id"])
            buckets = []
            for server in (s3_source, s3_destination):
                buckets.append(f"test-{uuid.uuid4().hex[:16]}")
                s3_client_for(server).create_bucket(Bucket=buckets[-1])
            edge = Edge(client, rest, ids[0], ids[1], buckets[0], buckets[1], "")
            started = await client.post("/api/v1/migrations", json=edge.migration(), headers=rest)
            assert started.status_code == 201, started.text
            edge.migration_id = started.json()["id"]
            yield edge


def assert_field_refused(
    response: httpx.Response, key: str, *words: str, source: str = "body", status: int = 422
) -> None:
    """A problem+json answer whose errors name ``key`` and whose detail says ``words``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert [(e["key"], e["source"]) for e in body["errors"]] == [(key, source)], body
    assert key in body["detail"]
    for word in words:
        assert word in body["detail"], body["detail"]


def assert_page_refused(response: httpx.Response, *words: str, status: int = 422) -> None:
    """A page (not JSON, not a trace) with an alert that says ``words``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert 'role="alert"' in response.text
    assert "Traceback" not in response.text
    for word in words:
        assert word in response.text, response.text


# Characters Postgres text cannot hold: NUL and lone surrogates ------------------------

MIGRATION_TEXT_FIELDS = [
    ("name", {"name": "photos\u0000"}),
    ("source_prefix", {"source_prefix": "logs/\u0000"}),
    ("destination_prefix", {"destination_prefix": "\u0000"}),
    ("filters.include[1]", {"filters": {"include": ["*.jpg", "*\u0000"]}}),
    ("filters.modified_after", {"filters": {"modified_after": "2024-01-31\u0000"}}),
    ("storage_class", {"storage_class": "STANDARD\u0000"}),
]


@pytest.mark.parametrize("path", ["/api/v1/migrations", "/api/v1/migrations/estimate"])
@pytest.mark.parametrize(
    ("key", "changes"), MIGRATION_TEXT_FIELDS, ids=[key for key, _ in MIGRATION_TEXT_FIELDS]
)
async def test_nul_in_a_migration_request_is_422_naming_the_field(
    edge: Edge, path: str, key: str, changes: dict[str, Any]
) -> None:
    # When a migration is asked for with a NUL byte in one of its text fields
    response = await edge.post_json(path, edge.migration(**changes))

    # Then it is refused, naming the field and the character
    assert_field_refused(response, key, "U+0000")


@pytest.mark.parametrize("path", ["/api/v1/migrations", "/api/v1/migrations/estimate"])
async def test_a_lone_surrogate_is_422_naming_the_field(edge: Edge, path: str) -> None:
    response = await edge.post_json(path, edge.migration(name="photos \ud800"))

    assert_field_refused(response, "name", "U+D800")


@pytest.mark.parametrize("key", ["name", "access_key", "secret_key", "region", "endpoint"])
async def test_nul_in_a_connection_is_422_naming_the_field(
    edge: Edge, s3_source: EmbeddedS3, key: str
) -> None:
    # Given a connection body that would work
    body = connection_body(s3_source, "nul", region="us-east-1")
    before = await edge.connection_count()

    # When one field carries a NUL byte
    response = await edge.post_json("/api/v1/connections", body | {key: body[key] + "\u0000"})

    # Then it is refused, naming the field, and nothing is saved
    assert_field_refused(response, key, "U+0000")
    assert s3_source.secret_key not in response.text
    assert await edge.connection_count() == before


async def test_nul_in_an_api_token_name_is_422(edge: Edge) -> None:
    response = await edge.post_json("/api/v1/tokens", {"name": "ci\u0000"})

    assert_field_refused(response, "name", "U+0000")


async def test_nul_in_a_sign_up_is_422(edge: Edge) -> None:
    body = {"email": new_email().replace("@", "\u0000@"), "password": PASSWORD}
    response = await edge.post_json("/api/v1/users", body)

    assert_field_refused(response, "email", "U+0000")


async def test_nul_in_query_parameters_is_422_naming_the_parameter(edge: Edge) -> None:
    migrations = await edge.client.get("/api/v1/migrations?cursor=%00", headers=edge.rest)
    assert_field_refused(migrations, "cursor", "U+0000", source="query")

    objects = f"/api/v1/migrations/{edge.migration_id}/objects"
    by_cursor = await edge.client.get(f"{objects}?cursor=a%00", headers=edge.rest)
    assert_field_refused(by_cursor, "cursor", "U+0000", source="query")

    by_prefix = await edge.client.get(f"{objects}?prefix=logs/%00", headers=edge.rest)
    assert_field_refused(by_prefix, "prefix", "U+0000", source="query")


async def test_nul_in_a_path_parameter_is_422_naming_it(edge: Edge) -> None:
    response = await edge.client.get(
        f"/api/v1/connections/{edge.source_id}/buckets/a%00b/scan", headers=edge.rest
    )

    assert_field_refused(response, "bucket", "U+0000", source="path")


async def test_nul_in_the_dashboards_forms_is_a_page_naming_the_field(edge: Edge) -> None:
    # The new-migration form
    migration = await edge.client.post("/migrations", data=edge.form(name="photos\u0000"))
    assert_page_refused(migration, "name", "U+0000")

    # The connection form
    connection = await edge.client.post(
        "/connections",
        data={"name": "nul\u0000", "endpoint": "http://127.0.0.1:1", "access_key": "a"}
        | {"secret_key": "b"},
    )
    assert_page_refused(connection, "name", "U+0000")

    # The API token form
    token = await edge.client.post("/account/tokens", data={"name": "ci\u0000"})
    assert_page_refused(token, "name", "U+0000")

    # A page's query parameter
    detail = await edge.client.get(f"/migrations/{edge.migration_id}?cursor=%00")
    assert_page_refused(detail, "cursor", "U+0000")


# Endpoint URLs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "words"),
    [("#top", "fragment"), ("/?versioning=1", "query"), ("/?", "query")],
    ids=["fragment", "query", "empty-query"],
)
async def test_an_endpoint_with_a_query_or_fragment_is_422(
    edge: Edge, s3_source: EmbeddedS3, suffix: str, words: str
) -> None:
    before = await edge.connection_count()
    body = {
        "name": "odd",
        "endpoint": s3_source.endpoint + suffix,
        "access_key": s3_source.access_key,
        "secret_key": s3_source.secret_key,
    }

    response = await edge.post_json("/api/v1/connections", body)

    assert_field_refused(response, "endpoint", words)
    assert await edge.connection_count() == before


async def test_an_endpoint_with_a_user_and_password_is_422_and_never_echoed(
    edge: Edge, s3_source: EmbeddedS3
) -> None:
    # Given an endpoint URL with a user and password in it
    url = s3_source.endpoint.replace("http://", "http://admin:hunter2-secret@")
    body = {
        "name": "userinfo",
        "endpoint": url,
        "access_key": s3_source.access_key,
        "secret_key": s3_source.secret_key,
    }
    before = await edge.connection_count()

    # When it is given through REST, and through the dashboard's form
    rest = await edge.post_json("/api/v1/connections", body)
    page = await edge.client.post("/connections", data=body)

    # Then both refuse it, say why, and never show the password again
    assert_field_refused(rest, "endpoint", "user")
    assert_page_refused(page, "Endpoint URL", "user")
    for response in (rest, page):
        assert "hunter2-secret" not in response.text
    assert await edge.connection_count() == before


# Bucket names ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/migrations", "/api/v1/migrations/estimate"])
@pytest.mark.parametrize("bucket", BAD_BUCKETS)
async def test_a_bucket_name_s3_cannot_have_is_422(edge: Edge, path: str, bucket: str) -> None:
    source = await edge.post_json(path, edge.migration(source_bucket=bucket))
    assert_field_refused(source, "source_bucket", "bucket name")

    destination = await edge.post_json(path, edge.migration(destination_bucket=bucket))
    assert_field_refused(destination, "destination_bucket", "bucket name")


@pytest.mark.parametrize("bucket", ["a..b", "192.168.5.4", "xn--abc"])
async def test_a_scan_of_a_bucket_name_s3_cannot_have_is_422(edge: Edge, bucket: str) -> None:
    response = await edge.client.get(
        f"/api/v1/connections/{edge.source_id}/buckets/{bucket}/scan", headers=edge.rest
    )

    assert_field_refused(response, "bucket", "bucket name", source="path")


async def test_a_legacy_bucket_name_is_not_refused_for_its_name(edge: Edge) -> None:
    # us-east-1 buckets from before March 2018 may have capitals and underscores
    response = await edge.post_json(
        "/api/v1/migrations", edge.migration(source_bucket="Legacy_Photos")
    )

    # Then the name passes, and the bucket (which does not exist) is what is refused
    assert response.status_code == 422, response.text
    assert "'Legacy_Photos' cannot be used" in response.json()["detail"]


async def test_the_bucket_pages_refuse_a_bucket_name_s3_cannot_have(edge: Edge) -> None:
    page = await edge.client.get(f"/buckets/{edge.source_id}/a..b")
    assert_page_refused(page, "bucket name")

    scan = await edge.client.get(f"/buckets/{edge.source_id}/a..b/scan")
    assert scan.status_code == 200  # a fragment of the page, its error in place of the scan
    assert 'role="alert"' in scan.text
    assert "bucket name" in scan.text


async def test_the_migration_form_refuses_a_bucket_name_s3_cannot_have(edge: Edge) -> None:
    response = await edge.client.post("/migrations", data=edge.form(source_bucket="a..b"))

    assert_page_refused(response, "Source bucket", "bucket name")


# Numbers ----------------------------------------------------------------------------------

BAD_LIMITS = [
    (name, value)
    for name in ("bandwidth_bytes_per_second", "concurrent_objects")
    for value in (-5, 0, 10**30)
]


@pytest.mark.parametrize("path", ["/api/v1/migrations", "/api/v1/migrations/estimate"])
@pytest.mark.parametrize(("name", "value"), BAD_LIMITS, ids=[f"{n}={v}" for n, v in BAD_LIMITS])
async def test_create_and_estimate_refuse_the_same_limits(
    edge: Edge, path: str, name: str, value: int
) -> None:
    response = await edge.post_json(path, edge.migration(limits={name: value}))

    assert_field_refused(response, f"limits.{name}")


@pytest.mark.parametrize("path", ["/api/v1/migrations", "/api/v1/migrations/estimate"])
@pytest.mark.parametrize("name", ["min_size", "max_size"])
async def test_a_size_that_does_not_fit_is_422(edge: Edge, path: str, name: str) -> None:
    response = await edge.post_json(path, edge.migration(filters={name: 10**30}))

    assert_field_refused(response, f"filters.{name}")


@pytest.mark.parametrize(
    ("field", "value", "label"),
    [
        ("min_size", "9" * 400, "Smallest size"),
        ("max_size", "9" * 400 + " GiB", "Largest size"),
        ("bandwidth_bytes_per_second", "9" * 400 + " MiB/s", "Bandwidth limit"),
        ("concurrent_objects", "9" * 400, "Objects at a time"),
        ("concurrent_objects", "\u00b2", "Objects at a time"),
        ("concurrent_objects", "0", "Objects at a time"),
    ],
    ids=["min-size", "max-size", "bandwidth", "objects-at-a-time", "superscript-two", "zero"],
)
async def test_the_migration_form_refuses_numbers_that_do_not_fit(
    edge: Edge, field: str, value: str, label: str
) -> None:
    response = await edge.client.post("/migrations", data=edge.form(**{field: value}))

    assert_page_refused(response, label)


async def test_the_estimate_form_refuses_a_limit_the_create_form_refuses(edge: Edge) -> None:
    response = await edge.client.post(
        "/migrations/estimate",
        data=edge.form(concurrent_objects="0"),
        headers={"hx-request": "true"},
    )

    assert response.status_code == 200  # the estimate's fragment, its error in place
    assert 'role="alert"' in response.text
    assert "Objects at a time: 0 is not a whole number from 1" in response.text


@pytest.mark.parametrize("path", ["/api/v1/migrations", "/api/v1/migrations/estimate"])
@pytest.mark.parametrize(
    "instant", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"], ids=["after", "before"]
)
async def test_a_time_outside_the_years_1_to_9999_in_utc_is_422(
    edge: Edge, path: str, instant: str
) -> None:
    # A migration recorded with it showed a 500 for its page (the time in UTC overflowed)
    response = await edge.post_json(path, edge.migration(filters={"modified_after": instant}))

    assert_field_refused(response, "filters.modified_after", "9999")


# Bodies too big or too deep, refused before they are parsed -----------------------------


async def test_a_deeply_nested_body_is_400_not_500(edge: Edge) -> None:
    for body in (b"[" * 100_000, b'{"a":' * 100_000):
        response = await edge.client.post(
            "/api/v1/migrations",
            content=body,
            headers=edge.rest | {"content-type": "application/json"},
        )
        assert response.status_code == 400, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "nested" in response.json()["detail"]


async def test_a_body_over_a_mebibyte_is_413(edge: Edge) -> None:
    response = await edge.post_json("/api/v1/migrations", edge.migration(name="x" * 2**21))

    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


# The rules themselves, without a server ----------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["abc", "test-0123456789abcdef", "a.b-c", "1bucket", "x" * 63, "Legacy_Photos", "y" * 255],
)
def test_bucket_names_s3_allows_pass(name: str) -> None:
    check_bucket_name(name, "source_bucket")


@pytest.mark.parametrize("name", [*BAD_BUCKETS, TOO_LONG])
def test_bucket_names_s3_refuses_are_refused_naming_the_field(name: str) -> None:
    with pytest.raises(InvalidRequest, match=r"^source_bucket: .*bucket name"):
        check_bucket_name(name, "source_bucket")


@pytest.mark.parametrize(
    ("body", "depth"),
    [
        (b"{}", 1),
        (b'{"a": [1, {"b": []}]}', 4),
        (b'{"name": "[[[[{{{{\\"[[["}', 1),  # brackets in strings do not count
        (b"[" * 100_000, 100_000),
        (b"12", 0),
    ],
)
def test_json_depth_counts_only_structure(body: bytes, depth: int) -> None:
    assert json_depth(body) == depth
    assert MAX_JSON_DEPTH < 100_000


@pytest.mark.parametrize(
    "url",
    [
        "http://user:s3cr3t-pw@127.0.0.1:9000",
        "http://user@127.0.0.1:9000",
        "https://s3.example.com/#x",
        "https://s3.example.com?a=1",
        "http://127.0.0.1:99999",
        "http://:9000",
    ],
)
def test_endpoint_urls_with_more_than_a_place_are_refused(url: str) -> None:
    with pytest.raises(PresetError) as refused:
        endpoint_for("custom", "us-east-1", url)
    assert "s3cr3t-pw" not in str(refused.value)
    assert refused.value.field == "endpoint"


def test_a_size_too_large_for_postgres_is_refused_not_overflowed() -> None:
    with pytest.raises(InvalidRequest, match=r"^filters\.min_size: ") as too_many:
        parse_size("9" * 400, "filters.min_size")
    assert too_many.value.field == "filters.min_size"
    with pytest.raises(InvalidRequest, match=r"^filters\.min_size: "):
        parse_size("1e400", "filters.min_size")
    assert parse_size("1.5 KiB", "filters.min_size") == 1536


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        _cursor(f"2024-01-31T00:00:00|{uuid.UUID(int=1)}"),  # no time zone
        _cursor(f"0001-01-01T00:00:00+05:00|{uuid.UUID(int=1)}"),  # before year 1 in UTC
        _cursor(f"9999-12-31T23:59:59-05:00|{uuid.UUID(int=1)}"),  # after year 9999 in UTC
        _cursor("2024-01-31T00:00:00+00:00"),
        "%FF%FE",
        "*" * 3000,
    ],
    ids=["naive", "year-0", "year-10000", "no-id", "not-base64", "long"],
)
async def test_a_cursor_this_api_did_not_hand_out_is_400(edge: Edge, cursor: str) -> None:
    response = await edge.client.get(f"/api/v1/migrations?cursor={cursor}", headers=edge.rest)

    assert_field_refused(response, "cursor", "start without one", source="query", status=400)
