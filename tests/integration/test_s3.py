"""The S3 adapter against real servers: checks, listings, and verified copies."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

from cstor import s3
from cstor.domain.checksums import (
    GIB,
    MIB,
    ObjectTooLarge,
    composite_etag,
    is_md5_etag,
    is_multipart_etag,
    normalize_etag,
    part_size_for,
    parts_in_flight_for,
)
from launcher.embedded import EmbeddedS3, free_port
from tests.s3_objects import endpoint_of, open_uploads, planned

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MakeBucket = Callable[[EmbeddedS3], str]
ClientFor = Callable[[EmbeddedS3], "S3Client"]


@pytest.fixture
def copier(s3_source: EmbeddedS3, s3_destination: EmbeddedS3) -> s3.ObjectCopier:
    """A copier from the source server to the destination server, multipart above 5 MiB."""
    return s3.ObjectCopier(
        endpoint_of(s3_source),
        endpoint_of(s3_destination),
        multipart_threshold=5 * MIB,
        min_part_size=5 * MIB,
    )


# Copies ----------------------------------------------------------------------


async def test_a_small_copy_is_verified_and_keeps_bytes_and_headers(
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: MakeBucket,
    s3_client: ClientFor,
    copier: s3.ObjectCopier,
) -> None:
    # Given a 16 KiB object with a content type and user metadata
    source, destination = make_bucket(s3_source), make_bucket(s3_destination)
    body = os.urandom(16 * 1024)
    s3_client(s3_source).put_object(
        Bucket=source, Key="a/b.bin", Body=body, ContentType="image/png", Metadata={"team": "x"}
    )
    listed = planned(s3_source, source, "a/b.bin")

    # When it is copied under another key
    outcome = await copier.copy(source, "a/b.bin", destination, "c/b.bin", listed.size, listed.etag)

    # Then the copy is recorded with its MD5, and the destination holds the same object
    md5 = hashlib.md5(body).hexdigest()
    assert outcome == s3.CopyOutcome(size=len(body), checksum=f"md5:{md5}")
    copied = s3_client(s3_destination).get_object(Bucket=destination, Key="c/b.bin")
    assert copied["Body"].read() == body
    assert copied["ContentType"] == "image/png"
    assert {k.lower(): v for k, v in copied["Metadata"].items()} == {"team": "x"}


async def test_an_empty_object_is_copied(
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: MakeBucket,
    s3_client: ClientFor,
    copier: s3.ObjectCopier,
) -> None:
    # Given a 0-byte object
    source, destination = make_bucket(s3_source), make_bucket(s3_destination)
    s3_client(s3_source).put_object(Bucket=source, Key="empty", Body=b"")
    listed = planned(s3_source, source, "empty")

    # When it is copied
    outcome = await copier.copy(source, "empty", destination, "empty", 0, listed.etag)

    # Then it exists, empty, with the MD5 of nothing
    assert outcome == s3.CopyOutcome(size=0, checksum=f"md5:{hashlib.md5(b'').hexdigest()}")
    head = s3_client(s3_destination).head_object(Bucket=destination, Key="empty")
    assert head["ContentLength"] == 0


async def test_a_large_object_is_copied_in_parts_with_the_composite_checksum(
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: MakeBucket,
    s3_client: ClientFor,
    copier: s3.ObjectCopier,
) -> None:
    # Given a 12 MiB object, above the copier's 5 MiB multipart threshold
    source, destination = make_bucket(s3_source), make_bucket(s3_destination)
    body = os.urandom(12 * MIB)
    s3_client(s3_source).put_object(Bucket=source, Key="big", Body=body, ContentType="text/csv")
    listed = planned(s3_source, source, "big")

    # When it is copied
    outcome = await copier.copy(source, "big", destination, "big", listed.size, listed.etag)

    # Then it went up in three parts of 5, 5 and 2 MiB, verified by their composite ETag
    parts = [body[i : i + 5 * MIB] for i in range(0, len(body), 5 * MIB)]
    expected = composite_etag([hashlib.md5(part).digest() for part in parts])
    assert expected.endswith("-3")
    assert outcome == s3.CopyOutcome(size=12 * MIB, checksum=f"md5-parts:{expected}")
    copied = s3_client(s3_destination).get_object(Bucket=destination, Key="big")
    assert copied["Body"].read() == body
    assert copied["ContentType"] == "text/csv"
    assert open_uploads(s3_client(s3_destination), destination) == []


async def test_a_cancelled_multipart_copy_leaves_no_upload_open(
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: MakeBucket,
    s3_client: ClientFor,
) -> None:
    # Given a 40 MiB object copied one 5 MiB part at a time
    source, destination = make_bucket(s3_source), make_bucket(s3_destination)
    s3_client(s3_source).put_object(Bucket=source, Key="big", Body=os.urandom(40 * MIB))
    listed = planned(s3_source, source, "big")
    slow = s3.ObjectCopier(
        endpoint_of(s3_source),
        endpoint_of(s3_destination),
        multipart_threshold=5 * MIB,
        min_part_size=5 * MIB,
        max_parts_in_flight=1,
    )
    task = asyncio.create_task(
        slow.copy(source, "big", destination, "big", listed.size, listed.etag)
    )

    # When the copy is cancelled while its upload is open (a pause, say)
    client = s3_client(s3_destination)
    deadline = time.monotonic() + 20
    while not open_uploads(client, destination) and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    assert not task.done(), "the copy finished before it could be cancelled"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    # Then the upload was aborted, and no object was made
    assert open_uploads(client, destination) == []
    assert client.list_objects_v2(Bucket=destination).get("Contents", []) == []


async def test_a_source_overwritten_after_planning_is_not_copied(
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: MakeBucket,
    s3_client: ClientFor,
    copier: s3.ObjectCopier,
) -> None:
    # Given an object planned with one content, then overwritten with another of the same size
    source, destination = make_bucket(s3_source), make_bucket(s3_destination)
    s3_client(s3_source).put_object(Bucket=source, Key="k", Body=b"first")
    listed = planned(s3_source, source, "k")
    s3_client(s3_source).put_object(Bucket=source, Key="k", Body=b"other")

    # When it is copied as planned
    with pytest.raises(s3.S3Error) as raised:
        await copier.copy(source, "k", destination, "k", listed.size, listed.etag)

    # Then the copy fails as source-changed, for good, and nothing was written
    assert raised.value.reason == "source-changed"
    assert not raised.value.transient
    listing = s3_client(s3_destination).list_objects_v2(Bucket=destination)
    assert listing.get("Contents", []) == []


async def test_a_source_changed_on_a_store_that_enforces_if_match(
    moto_s3: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: MakeBucket,
    s3_client: ClientFor,
) -> None:
    # Given an object on moto, planned, then overwritten
    source, destination = make_bucket(moto_s3), make_bucket(s3_destination)
    s3_client(moto_s3).put_object(Bucket=source, Key="k", Body=b"first")
    listed = planned(moto_s3, source, "k")
    s3_client(moto_s3).put_object(Bucket=source, Key="k", Body=b"second")
    copier = s3.ObjectCopier(endpoint_of(moto_s3), endpoint_of(s3_destination))

    # When it is copied as planned
    with pytest.raises(s3.S3Error) as raised:
        await copier.copy(source, "k", destination, "k", listed.size, listed.etag)

    # Then the conditional GET refused it
    assert raised.value.reason == "source-changed"


async def test_a_source_deleted_after_planning_is_reported_missing(
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: MakeBucket,
    s3_client: ClientFor,
    copier: s3.ObjectCopier,
) -> None:
    # Given an object planned, then deleted
    source, destination = make_bucket(s3_source), make_bucket(s3_destination)
    s3_client(s3_source).put_object(Bucket=source, Key="gone", Body=b"soon gone")
    listed = planned(s3_source, source, "gone")
    s3_client(s3_source).delete_object(Bucket=source, Key="gone")

    # When it is copied
    with pytest.raises(s3.S3Error) as raised:
        await copier.copy(source, "gone", destination, "gone", listed.size, listed.etag)

    # Then the copy fails as source-missing, naming the key
    assert raised.value.reason == "source-missing"
    assert "'gone'" in str(raised.value)


async def test_a_copy_into_a_missing_bucket_says_so(
    s3_source: EmbeddedS3, make_bucket: MakeBucket, s3_client: ClientFor, copier: s3.ObjectCopier
) -> None:
    # Given an object to copy
    source = make_bucket(s3_source)
    s3_client(s3_source).put_object(Bucket=source, Key="k", Body=b"data")
    listed = planned(s3_source, source, "k")

    # When the destination bucket does not exist
    with pytest.raises(s3.S3Error) as raised:
        await copier.copy(source, "k", "no-such-bucket-here", "k", listed.size, listed.etag)

    # Then the error says which
    assert raised.value.reason == "no-such-bucket"


# Connection checks -----------------------------------------------------------


async def test_good_keys_pass_the_check(s3_source: EmbeddedS3, make_bucket: MakeBucket) -> None:
    bucket = make_bucket(s3_source)
    await s3.check_access(endpoint_of(s3_source))
    await s3.check_access(endpoint_of(s3_source), bucket)


async def test_a_wrong_secret_is_reported_as_invalid_credentials(
    s3_source: EmbeddedS3, make_bucket: MakeBucket
) -> None:
    # Given the right access key with a wrong secret
    bucket = make_bucket(s3_source)
    endpoint = endpoint_of(s3_source, secret="not-the-secret-1")

    for checked_bucket in (None, bucket):
        # When the connection is checked, with or without a bucket
        with pytest.raises(s3.S3Error) as raised:
            await s3.check_access(endpoint, checked_bucket)

        # Then the keys are blamed, and the secret is not shown
        assert raised.value.reason == "invalid-credentials"
        assert "rejected by" in str(raised.value)
        assert "not-the-secret-1" not in str(raised.value)
        assert "not-the-secret-1" not in repr(endpoint)


async def test_a_closed_port_is_reported_unreachable_within_seconds() -> None:
    # Given an endpoint where nothing listens
    endpoint = s3.Endpoint(
        url=f"http://127.0.0.1:{free_port()}", access_key="AKEY", secret_key="secret"
    )

    # When it is checked
    started = time.monotonic()
    with pytest.raises(s3.S3Error) as raised:
        await s3.check_access(endpoint)

    # Then it is unreachable, quickly, and worth retrying later
    assert raised.value.reason == "unreachable"
    assert raised.value.transient
    assert time.monotonic() - started < 5


async def test_a_missing_bucket_is_reported(s3_source: EmbeddedS3) -> None:
    with pytest.raises(s3.S3Error) as raised:
        await s3.check_access(endpoint_of(s3_source), "no-such-bucket-here")
    assert raised.value.reason == "no-such-bucket"


# Listings ----------------------------------------------------------------------


def test_a_listing_comes_in_key_order_in_pages_of_at_most_1000(
    s3_source: EmbeddedS3, make_bucket: MakeBucket, s3_client: ClientFor
) -> None:
    # Given 2,500 objects
    bucket = make_bucket(s3_source)
    client = s3_client(s3_source)
    keys = [f"obj-{i:05d}" for i in range(2500)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: client.put_object(Bucket=bucket, Key=key, Body=key), keys))

    # When they are listed
    pages = list(s3.list_pages(endpoint_of(s3_source), bucket))

    # Then every key comes once, in order, in pages of at most 1,000, with size and plain ETag
    assert [len(page) for page in pages] == [1000, 1000, 500]
    listed = [obj for page in pages for obj in page]
    assert [obj.key for obj in listed] == keys
    assert listed[7].size == len(keys[7])
    assert listed[7].etag == hashlib.md5(keys[7].encode()).hexdigest()

    # And a listing can resume after a key
    resumed = s3.list_pages(endpoint_of(s3_source), bucket, start_after=keys[1999])
    assert [obj.key for page in resumed for obj in page] == keys[2000:]


def test_listing_a_missing_bucket_fails_clearly(s3_source: EmbeddedS3) -> None:
    with pytest.raises(s3.S3Error) as raised:
        list(s3.list_pages(endpoint_of(s3_source), "no-such-bucket-here"))
    assert raised.value.reason == "no-such-bucket"


# Checksum rules (pure) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "part"),
    [
        (0, 8 * MIB),
        (100 * MIB, 8 * MIB),
        (8 * MIB * 10_000, 8 * MIB),
        (8 * MIB * 10_000 + 1, 9 * MIB),
        (5 * 1024 * GIB, 525 * MIB),
    ],
)
def test_part_size_grows_so_no_upload_needs_more_than_10000_parts(size: int, part: int) -> None:
    assert part_size_for(size) == part
    assert -(-size // part) <= 10_000


def test_part_size_is_at_least_the_s3_minimum_and_at_most_5_gib() -> None:
    assert part_size_for(1, min_part=1024) == 5 * MIB
    with pytest.raises(ObjectTooLarge):
        part_size_for(10_000 * 5 * GIB + 1)


def test_parts_in_flight_follow_two_per_100_mib_within_the_limit() -> None:
    assert parts_in_flight_for(64 * MIB, limit=8) == 2
    assert parts_in_flight_for(250 * MIB, limit=8) == 6
    assert parts_in_flight_for(10 * GIB, limit=8) == 8


def test_composite_etag_is_the_md5_of_the_part_md5s_and_the_count() -> None:
    parts = [b"a" * 10, b"b" * 3]
    digests = [hashlib.md5(part).digest() for part in parts]
    assert composite_etag(digests) == f"{hashlib.md5(b''.join(digests)).hexdigest()}-2"


def test_etag_kinds() -> None:
    md5 = hashlib.md5(b"x").hexdigest()
    assert normalize_etag(f'"{md5}"') == md5
    assert normalize_etag('W/"abc"') == "abc"
    assert normalize_etag(None) == ""
    assert is_md5_etag(f'"{md5}"')
    assert not is_md5_etag(f"{md5}-3")
    assert is_multipart_etag(f'"{md5}-3"')
    assert not is_multipart_etag(md5)


async def test_copies_sharing_a_small_memory_budget_all_finish(
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: MakeBucket,
    s3_client: ClientFor,
) -> None:
    # Given two objects whose parts are hashed in pairs (four in flight: over 100 MiB),
    # and a copier with room for only two parts in all
    source, destination = make_bucket(s3_source), make_bucket(s3_destination)
    bodies = {f"o{n}": os.urandom(100 * MIB + 1) for n in range(2)}
    for key, body in bodies.items():
        s3_client(s3_source).put_object(Bucket=source, Key=key, Body=body)
    assert parts_in_flight_for(100 * MIB + 1, 30) == 4
    tight = s3.ObjectCopier(
        endpoint_of(s3_source),
        endpoint_of(s3_destination),
        multipart_threshold=5 * MIB,
        min_part_size=5 * MIB,
        memory_budget=10 * MIB,
    )

    # When both are copied at once (each holding a part read, waiting for room for the next)
    listed = {key: planned(s3_source, source, key) for key in bodies}
    outcomes = await asyncio.wait_for(
        asyncio.gather(
            *(
                tight.copy(source, key, destination, key, obj.size, obj.etag)
                for key, obj in listed.items()
            )
        ),
        timeout=120,
    )

    # Then each copy finished, recorded by its parts' MD5s, and the destination holds
    # exactly the bytes of the source (rclone gives a whole file the MD5 of its bytes)
    client = s3_client(s3_destination)
    for (key, body), outcome in zip(bodies.items(), outcomes, strict=True):
        parts = [body[i : i + 5 * MIB] for i in range(0, len(body), 5 * MIB)]
        composite = composite_etag([hashlib.md5(part).digest() for part in parts])
        assert (outcome.size, outcome.checksum) == (len(body), f"md5-parts:{composite}")
        head = client.head_object(Bucket=destination, Key=key)
        assert normalize_etag(head["ETag"]) == hashlib.md5(body).hexdigest()
