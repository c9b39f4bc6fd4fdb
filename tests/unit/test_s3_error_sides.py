"""Each caller of a listing or a connection check says which side it was for: the planner's
and the estimate's listings name the migration's source or destination, a scan, a
connection's test and its buckets name the connection. No server: the listing is a fake
that refuses as the store would (by the `side` it is given), the checks are botocore's
own client with a Stubber answering AccessDenied."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any
from uuid import uuid4

import pytest
from botocore.stub import Stubber

from cstor import s3
from cstor.decisions import Scope, estimate
from cstor.domain.route import Route
from cstor.s3 import server_copy, verify
from cstor.s3.control import client
from cstor.s3.copy_context import CopyContext, CopyRequest
from cstor.s3.errors import Site, from_status
from cstor.s3.options import CopyOptions
from services.api.buckets.scan import scan_bucket
from services.api.connections import commands as connections
from services.api.migrations import planning as api_planning

URL = "http://store.example:9000"
WORDS = "Access Denied by bucket policy lock-7"


def endpoint(url: str = URL) -> s3.Endpoint:
    return s3.Endpoint(url=url, access_key="limited-key", secret_key="limited-secret")


def refusing(bucket: str) -> Any:
    """A `list_pages` that lists nothing, and refuses `bucket` naming the side it is given."""

    def list_pages(
        at: s3.Endpoint, listed: str, prefix: str = "", start_after: str | None = None,
        *, side: str = "",
    ) -> Iterator[list[s3.ListedObject]]:  # fmt: skip
        if listed == bucket:
            site = Site(at.url, side, listed)
            raise from_status(403, "AccessDenied", site, "listing", WORDS)
        yield from ()

    return list_pages


def assert_names(error: BaseException, side: str) -> None:
    text = str(error)
    assert f"the {side} {URL}" in text
    assert "bucket 'locked'" in text
    assert "AccessDenied" in text
    assert WORDS in text


def scope(source_bucket: str, destination_bucket: str) -> Scope:
    route = Route(uuid4(), source_bucket, "", uuid4(), destination_bucket, "")
    return Scope(route=route)


@pytest.mark.parametrize(
    ("side", "source_bucket", "destination_bucket"),
    [("source", "locked", "open"), ("destination", "open", "locked")],
)
def test_the_planners_listings_name_their_side(
    monkeypatch: pytest.MonkeyPatch, side: str, source_bucket: str, destination_bucket: str
) -> None:
    # Given a store that refuses to list `locked`
    monkeypatch.setattr(s3, "list_pages", refusing("locked"))
    # When planning (here its dry run) lists both sides
    with pytest.raises(s3.S3Error) as refused:
        estimate(scope(source_bucket, destination_bucket), endpoint(), endpoint())
    # Then the error names the side that was refused, the bucket, the store, code and words
    assert_names(refused.value, side)


def services_with(connection_name: str) -> Any:
    async def get(owner: str, connection_id: object) -> Any:
        return SimpleNamespace(name=connection_name, owner=owner)

    async def endpoint_of(connection_id: object) -> s3.Endpoint:
        return endpoint()

    return SimpleNamespace(connections=SimpleNamespace(get=get, endpoint=endpoint_of))


async def test_a_scan_names_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a connection 'archive' whose store refuses to list `locked`
    monkeypatch.setattr(s3, "list_pages", refusing("locked"))
    # When the bucket is scanned
    with pytest.raises(Exception) as refused:  # noqa: PT011 - the api's InvalidRequest
        await scan_bucket(services_with("archive"), "alice", uuid4(), "locked", "")
    # Then the error names the connection, the store, the bucket, code and words
    assert_names(refused.value, "connection 'archive'")


async def test_retrying_failures_names_the_source(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a completed migration from `locked` with one failed object, and a store that
    # now refuses to list `locked`
    monkeypatch.setattr(s3, "list_pages", refusing("locked"))
    migration = SimpleNamespace(source_connection_id=uuid4(), source_bucket="locked")
    services = services_with("archive")

    async def viewed(owner: str, migration_id: object) -> object:
        return object()

    async def failed(pool: object, migration_id: object) -> list[Any]:
        return [SimpleNamespace(key="a.txt", size=1, etag="e", version=3)]

    services.read_models = SimpleNamespace(migration=viewed, pool=None)
    services.migrations = SimpleNamespace(get=lambda migration_id: migration)
    monkeypatch.setattr(api_planning.queries, "failed_objects", failed)
    # When its failures are retried (the source is listed for what it holds now)
    with pytest.raises(Exception) as refused:  # noqa: PT011 - the api's InvalidRequest
        await api_planning.retry_failed(services, "alice", uuid4())
    # Then the error names the source
    assert_names(refused.value, "source")


@pytest.fixture
def denying() -> Iterator[Stubber]:
    """The check client of `endpoint()` (one per endpoint, cached) answering as stubbed."""
    stubber = Stubber(client(endpoint(), quick=True))
    with stubber:
        yield stubber


def deny(stubber: Stubber, operation: str) -> None:
    stubber.add_client_error(operation, "AccessDenied", WORDS, http_status_code=403)


async def test_a_migrations_bucket_check_names_its_side(denying: Stubber) -> None:
    # Given keys the store refuses to list `locked` for
    deny(denying, "list_objects_v2")
    # When a migration's destination bucket is checked
    with pytest.raises(s3.S3Error) as refused:
        await s3.check_access(endpoint(), "locked", side="destination")
    # Then the error names the destination
    assert_names(refused.value, "destination")


async def test_a_connection_test_and_its_buckets_name_the_connection(denying: Stubber) -> None:
    # Given keys the store rejects
    for _ in range(2):
        denying.add_client_error(
            "list_buckets", "SignatureDoesNotMatch", WORDS, http_status_code=403
        )
    # When a connection 'archive' is tested, and its buckets listed
    for check in (
        s3.check_access(endpoint(), side=s3.connection_side("archive")),
        s3.list_buckets(endpoint(), side=s3.connection_side("archive")),
    ):
        with pytest.raises(s3.S3Error) as refused:
            await check
        # Then each error names the connection and the store, the code and the words
        text = str(refused.value)
        assert f"the connection 'archive' {URL}" in text
        assert "SignatureDoesNotMatch" in text
        assert WORDS in text


async def test_the_api_names_the_connection_it_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a store that rejects the keys of every check
    checked: list[str] = []

    async def check_access(at: s3.Endpoint, bucket: str | None = None, *, side: str = "") -> None:
        checked.append(side)
        raise from_status(403, "SignatureDoesNotMatch", Site(at.url, side), "listing buckets")

    monkeypatch.setattr(s3, "check_access", check_access)
    data = SimpleNamespace(
        provider="custom", region="us-east-1", endpoint=URL, name="archive",
        access_key="k", secret_key="s",
    )  # fmt: skip
    # When a connection 'archive' is created
    with pytest.raises(Exception) as refused:  # noqa: PT011 - the api's InvalidRequest
        await connections.create_connection(services_with("archive"), "alice", data)  # type: ignore[arg-type]
    # Then its test failed naming the connection
    assert f"the connection 'archive' {URL}" in str(refused.value)
    assert checked == ["connection 'archive'"]


SOURCE_SITE = Site(URL, "source", "photos", "cat.jpg")
DESTINATION_SITE = Site(URL, "destination", "backup", "cat.jpg")


@pytest.mark.parametrize(
    ("failure", "words"),
    [
        (lambda: verify.changed(SOURCE_SITE, 5, "e1", 6, "e2"),
         f"'cat.jpg' in bucket 'photos' at the source {URL} changed since it was planned"),
        (lambda: verify.grown(SOURCE_SITE, 5),
         f"more than the planned 5 bytes were read for 'cat.jpg' in bucket 'photos' at the "
         f"source {URL}"),
        (lambda: verify.check_size(SOURCE_SITE, 4, 5),
         f"4 bytes were read for 'cat.jpg' in bucket 'photos' at the source {URL}, "
         "the source has 5"),
        (lambda: verify.check_size(DESTINATION_SITE, 4, 5, "are stored for"),
         f"4 bytes are stored for 'cat.jpg' in bucket 'backup' at the destination {URL}, "
         "the source has 5"),
        (lambda: verify.check_etag(DESTINATION_SITE, "e1", "e2"),
         f"the destination {URL} stored 'cat.jpg' in bucket 'backup' with ETag e1, "
         "the bytes sent give e2"),
    ],
)  # fmt: skip
def test_a_copy_that_does_not_check_out_names_the_side_store_bucket_and_key(
    failure: Any, words: str
) -> None:
    # Given a copy whose source changed, grew, shrank, or whose copy is not what was sent
    # When it is checked
    error = raised_by(failure)
    # Then the error names the side and store, the bucket and the key
    assert words in str(error)


def raised_by(failure: Any) -> s3.S3Error:
    """The S3Error `failure` raises (the checks) or returns (the errors made for raising)."""
    try:
        made = failure()
    except s3.S3Error as error:
        return error
    assert isinstance(made, s3.S3Error)
    return made


async def test_a_server_copy_of_a_gone_source_names_the_source_and_the_stores_words(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a server-side copy whose store answers NoSuchKey for the source
    async def copy_object(*args: object) -> str:
        site = Site(URL, "destination", "backup", "cat.jpg")
        raise from_status(404, "NoSuchKey", site, "copying", "The specified key does not exist.")

    monkeypatch.setattr(server_copy, "copy_object", copy_object)
    context = CopyContext(
        endpoint(), endpoint(), memory_budget=1 << 20, threads=1, attempts=1, journal=None
    )
    request = CopyRequest(
        source_bucket="photos", key="cat.jpg", bucket="backup", target="cat.jpg",
        size=5, etag="0cc175b9c0f1b6a831c399e269772661",
    )  # fmt: skip
    # When it is copied
    with pytest.raises(s3.S3Error) as raised:
        await server_copy.ServerCopy(context).copy(request, CopyOptions())
    # Then the source is missing, named with its bucket and store, with the store's words
    assert raised.value.reason == "source-missing"
    text = str(raised.value)
    assert f"'cat.jpg' in bucket 'photos' at the source {URL} no longer exists" in text
    assert "NoSuchKey: The specified key does not exist." in text
