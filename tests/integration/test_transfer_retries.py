"""Which failures are tried again, and how an object ends when they keep failing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError

from cstor import contracts, s3
from cstor.app.results import CopyResult
from cstor.s3 import network
from cstor.s3.errors import Site, from_boto
from launcher.embedded import EmbeddedS3, free_port
from services.transfer.copying import PacketCopier
from tests.s3_objects import endpoint_of, planned
from tests.stack import s3_client_for
from tests.store_proxy import Seen, StoreProxy, a_source_stream

MakeBucket = Callable[[EmbeddedS3], str]


@pytest.mark.parametrize(
    ("status", "code", "reason", "transient"),
    [
        (503, "SlowDown", "slow-down", True),
        (503, "", "slow-down", True),
        (500, "InternalError", "server-error", True),
        (502, "", "server-error", True),
        (400, "RequestTimeout", "server-error", True),
        (429, "", "server-error", True),
        (403, "AccessDenied", "access-denied", False),
        (403, "SignatureDoesNotMatch", "invalid-credentials", False),
        (404, "NoSuchKey", "not-found", False),
        (404, "NoSuchBucket", "no-such-bucket", False),
        (412, "PreconditionFailed", "source-changed", False),
        (400, "InvalidArgument", "s3-error", False),
        (400, "EntityTooSmall", "s3-error", False),
    ],
)
def test_error_answers_are_transient_only_when_trying_again_can_help(
    status: int, code: str, reason: str, transient: bool
) -> None:
    assert s3.classify(status, code) == (reason, transient)


def test_timeouts_and_dropped_connections_are_transient() -> None:
    for error in (ConnectTimeoutError(endpoint_url="x"), ReadTimeoutError(endpoint_url="x")):
        assert from_boto(error, Site("http://store"), "copying").transient


def test_a_slow_down_answer_says_so() -> None:
    answer = ClientError(
        {"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "PutObject"
    )
    error = from_boto(answer, Site("http://store"), "writing 'k'")
    assert (error.reason, error.transient) == ("slow-down", True)
    assert "slow down" in str(error)


def packet_of(
    source_bucket: str, destination_bucket: str, *keys: tuple[str, int, str]
) -> contracts.PacketPlanned:
    return contracts.PacketPlanned(
        event_id=uuid.uuid4(),
        migration_id=uuid.uuid4(),
        occurred_at=datetime.now(UTC),
        position=1,
        packet_id=uuid.uuid4(),
        sequence=0,
        source_connection_id=uuid.uuid4(),
        source_bucket=source_bucket,
        source_prefix="",
        destination_connection_id=uuid.uuid4(),
        destination_bucket=destination_bucket,
        destination_prefix="",
        objects=[contracts.PacketObject(key, size, etag) for key, size, etag in keys],
    )


async def copy_all(
    packet: contracts.PacketPlanned, copier: s3.ObjectCopier
) -> list[CopyResult | None]:
    """Every object of the packet, three attempts each, never told to stop."""
    copying = PacketCopier(asyncio.Semaphore(4), attempts=3)
    return await copying.copy_packet(packet, copier, packet.objects, lambda: False)


async def test_a_permanent_failure_ends_the_object_at_the_first_attempt(
    s3_source: EmbeddedS3, s3_destination: EmbeddedS3, make_bucket: MakeBucket
) -> None:
    # Given a packet whose destination bucket does not exist
    source = make_bucket(s3_source)
    copier = s3.ObjectCopier(endpoint_of(s3_source), endpoint_of(s3_destination))
    s3_client_for(s3_source).put_object(Bucket=source, Key="k", Body=b"data")
    listed = planned(s3_source, source, "k")
    packet = packet_of(source, "no-such-bucket-here", ("k", listed.size, listed.etag))

    # When it is copied with three attempts allowed
    (result,) = await copy_all(packet, copier)

    # Then the object failed once, with its error class and a message
    assert result is not None
    assert (result.copied, result.reason, result.attempts) == (False, "no-such-bucket", 1)
    assert "does not exist" in result.message


async def test_a_transient_failure_is_tried_again_then_ends_failed(
    s3_destination: EmbeddedS3, make_bucket: MakeBucket
) -> None:
    # Given a source that does not answer at all
    gone = s3.Endpoint(url=f"http://127.0.0.1:{free_port()}", access_key="K", secret_key="S")
    copier = s3.ObjectCopier(gone, endpoint_of(s3_destination))
    packet = packet_of("b", make_bucket(s3_destination), ("k", 4, ""))

    # When it is copied with three attempts allowed
    (result,) = await copy_all(packet, copier)

    # Then it was tried three times and ends failed as unreachable
    assert result is not None
    assert (result.copied, result.reason, result.attempts) == (False, "unreachable", 3)


# Retries do not nest: each request is tried again by one layer only ---------------

MIB = 1024 * 1024


@pytest.fixture
def destination_proxy(s3_destination: EmbeddedS3) -> Iterator[StoreProxy]:
    """The destination's rclone behind a proxy that counts (and may refuse) requests."""
    with StoreProxy(s3_destination.endpoint).running() as proxy:
        yield proxy


@pytest.fixture
def source_proxy(s3_source: EmbeddedS3) -> Iterator[StoreProxy]:
    with StoreProxy(s3_source.endpoint).running() as proxy:
        yield proxy


def through(proxy: StoreProxy, server: EmbeddedS3) -> s3.Endpoint:
    """`server`'s keys, at the proxy's address."""
    return s3.Endpoint(url=proxy.url, access_key=server.access_key, secret_key=server.secret_key)


def a_part_upload(seen: Seen) -> bool:
    return seen.method == "PUT" and "partNumber=" in seen.query


def an_upload_started(seen: Seen) -> bool:
    return seen.method == "POST" and "uploads" in seen.query.split("&")


def part_upload(number: int) -> Callable[[Seen], bool]:
    return lambda seen: a_part_upload(seen) and f"partNumber={number}" in seen.query.split("&")


def in_parts(source: s3.Endpoint, destination: s3.Endpoint) -> s3.ObjectCopier:
    """A copier that sends anything above 5 MiB in 5 MiB parts, three attempts allowed."""
    return s3.ObjectCopier(
        source, destination, multipart_threshold=5 * MIB, min_part_size=5 * MIB, attempts=3
    )


async def test_a_part_the_store_keeps_refusing_is_sent_three_times_and_the_object_started_once(
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    destination_proxy: StoreProxy,
    make_bucket: MakeBucket,
) -> None:
    # Given a 12 MiB object, and a destination that answers 500 to every part upload
    source, destination = make_bucket(s3_source), make_bucket(s3_destination)
    s3_client_for(s3_source).put_object(Bucket=source, Key="big", Body=b"x" * (12 * MIB))
    listed = planned(s3_source, source, "big")
    destination_proxy.refuse = a_part_upload
    copier = in_parts(endpoint_of(s3_source), through(destination_proxy, s3_destination))

    # When it is copied with three attempts allowed, both by the copier and per object
    (result,) = await copy_all(packet_of(source, destination, ("big", listed.size, "")), copier)

    # Then the copier tried a part three times and gave up: the object was not started again
    assert result is not None
    assert (result.copied, result.reason, result.attempts) == (False, "server-error", 1)
    assert "tried 3 times" in result.message
    assert destination_proxy.count(an_upload_started) == 1
    tries = [destination_proxy.count(part_upload(number)) for number in (1, 2, 3)]
    assert max(tries) == 3, tries
    assert all(count <= 3 for count in tries), tries


async def test_a_control_call_the_store_keeps_refusing_is_sent_three_times_in_all(
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    source_proxy: StoreProxy,
    make_bucket: MakeBucket,
) -> None:
    # Given a 12 MiB object at a source that answers 500 to every HEAD
    source, destination = make_bucket(s3_source), make_bucket(s3_destination)
    s3_client_for(s3_source).put_object(Bucket=source, Key="big", Body=b"y" * (12 * MIB))
    listed = planned(s3_source, source, "big")
    source_proxy.refuse = lambda seen: seen.method == "HEAD"
    copier = in_parts(through(source_proxy, s3_source), endpoint_of(s3_destination))

    # When it is copied with three attempts allowed, both by the copier and per object
    (result,) = await copy_all(packet_of(source, destination, ("big", listed.size, "")), copier)

    # Then the HEAD was sent three times, not three times for each attempt of the object
    assert result is not None
    assert (result.copied, result.reason) == (False, "server-error")
    assert source_proxy.count(lambda seen: seen.method == "HEAD") == 3


async def test_a_source_stream_cut_off_mid_way_is_tried_again_with_the_object(
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    source_proxy: StoreProxy,
    make_bucket: MakeBucket,
) -> None:
    # Given a 12 MiB object at a source whose first GET stream stops half-way and hangs up
    source, destination = make_bucket(s3_source), make_bucket(s3_destination)
    s3_client_for(s3_source).put_object(Bucket=source, Key="big", Body=b"w" * (12 * MIB))
    listed = planned(s3_source, source, "big")
    source_proxy.cut = lambda seen: (
        a_source_stream(seen) and source_proxy.count(a_source_stream) == 1
    )
    copier = in_parts(through(source_proxy, s3_source), endpoint_of(s3_destination))

    # When it is copied with three attempts allowed
    packet = packet_of(source, destination, ("big", listed.size, listed.etag))
    (result,) = await copy_all(packet, copier)

    # Then the transfer copied the object again (a transient failure), and it arrived whole
    assert result is not None
    assert (result.copied, result.attempts) == (True, 2)
    assert source_proxy.count(a_source_stream) == 2
    assert planned(s3_destination, destination, "big").size == 12 * MIB


async def test_a_whole_object_the_store_keeps_refusing_is_sent_once_per_attempt(
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    destination_proxy: StoreProxy,
    make_bucket: MakeBucket,
) -> None:
    # Given a small object, and a destination that answers 500 to every PUT
    source, destination = make_bucket(s3_source), make_bucket(s3_destination)
    s3_client_for(s3_source).put_object(Bucket=source, Key="small", Body=b"z" * 1024)
    listed = planned(s3_source, source, "small")
    destination_proxy.refuse = lambda seen: seen.method == "PUT"
    copier = in_parts(endpoint_of(s3_source), through(destination_proxy, s3_destination))

    # When it is copied with three attempts allowed
    packet = packet_of(source, destination, ("small", listed.size, listed.etag))
    (result,) = await copy_all(packet, copier)

    # Then the transfer tried it three times, each one PUT: no client retried it as well
    assert result is not None
    assert (result.copied, result.reason, result.attempts) == (False, "server-error", 3)
    assert destination_proxy.count(lambda seen: seen.method == "PUT") == 3


def test_a_listing_page_the_store_refuses_is_asked_as_often_as_listings_are_tried(
    s3_source: EmbeddedS3, source_proxy: StoreProxy, make_bucket: MakeBucket
) -> None:
    # Given a source that answers 500 to every listing
    bucket = make_bucket(s3_source)
    source_proxy.refuse = lambda seen: seen.method == "GET" and "list-type=2" in seen.query

    # When the planner lists it
    with pytest.raises(s3.S3Error) as raised:
        list(s3.list_pages(through(source_proxy, s3_source), bucket))

    # Then the page was asked network.LISTING.attempts times, and the listing failed
    assert raised.value.reason == "server-error"
    assert source_proxy.count(lambda seen: seen.method == "GET") == network.LISTING.attempts


async def test_a_connection_check_the_store_refuses_is_asked_as_often_as_checks_are_tried(
    s3_source: EmbeddedS3, source_proxy: StoreProxy, make_bucket: MakeBucket
) -> None:
    # Given a source that answers 500 to every listing
    bucket = make_bucket(s3_source)
    source_proxy.refuse = lambda seen: seen.method == "GET"

    # When a connection to it is checked
    with pytest.raises(s3.S3Error) as raised:
        await s3.check_access(through(source_proxy, s3_source), bucket)

    # Then it was asked network.CHECK.attempts times
    assert raised.value.reason == "server-error"
    assert source_proxy.count(lambda seen: seen.method == "GET") == network.CHECK.attempts
