"""A multipart copy's source stream (cstor.s3.source_stream) against real servers: a
source overwritten between its HEAD and its GET, a stream cut off mid-way, a body
stored encoded. The source is behind a recording proxy (tests/store_proxy.py) that can
change the store under a request, or cut its answer short."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

import pytest

from cstor import s3
from launcher.embedded import EmbeddedS3
from tests.s3_objects import endpoint_of, open_uploads, planned
from tests.stack import s3_client_for
from tests.store_proxy import Seen, StoreProxy, a_source_stream

MakeBucket = Callable[[EmbeddedS3], str]
MIB = 1024 * 1024


def in_parts(proxy: StoreProxy, server: EmbeddedS3, destination: EmbeddedS3) -> s3.ObjectCopier:
    """A copier from `server` (through `proxy`) that copies above 5 MiB in 5 MiB parts."""
    source = s3.Endpoint(url=proxy.url, access_key=server.access_key, secret_key=server.secret_key)
    return s3.ObjectCopier(
        source, endpoint_of(destination), multipart_threshold=5 * MIB, min_part_size=5 * MIB
    )


@pytest.mark.parametrize("store", ["s3_source", "moto_s3"])
async def test_a_source_overwritten_as_its_stream_starts_is_not_copied(
    store: str, request: pytest.FixtureRequest, s3_destination: EmbeddedS3, make_bucket: MakeBucket
) -> None:
    # Given a 12 MiB object, planned, on rclone (which ignores If-Match) or moto (412)
    server: EmbeddedS3 = request.getfixturevalue(store)
    source, destination = make_bucket(server), make_bucket(s3_destination)
    client = s3_client_for(server)
    client.put_object(Bucket=source, Key="big", Body=b"a" * (12 * MIB))
    listed = planned(server, source, "big")

    def overwrite(seen: Seen) -> None:
        if a_source_stream(seen):
            client.put_object(Bucket=source, Key="big", Body=b"b" * (12 * MIB))

    with StoreProxy(server.endpoint).running() as proxy:
        # And overwritten with as many bytes after its HEAD, as its stream is asked for
        proxy.before = overwrite
        copier = in_parts(proxy, server, s3_destination)

        # When it is copied as planned
        with pytest.raises(s3.S3Error) as raised:
            await copier.copy(source, "big", destination, "big", listed.size, listed.etag)

    # Then the copy fails as source-changed, for good, and its upload was aborted
    assert (raised.value.reason, raised.value.transient) == ("source-changed", False)
    assert "'big' in" in str(raised.value)
    assert "changed since it was planned" in str(raised.value)
    assert proxy.count(a_source_stream) == 1
    assert open_uploads(s3_client_for(s3_destination), destination) == []


async def test_a_source_stream_cut_off_mid_way_fails_transiently_in_words(
    s3_source: EmbeddedS3, s3_destination: EmbeddedS3, make_bucket: MakeBucket
) -> None:
    # Given a 12 MiB object, and a source whose stream stops half-way and hangs up
    source, destination = make_bucket(s3_source), make_bucket(s3_destination)
    s3_client_for(s3_source).put_object(Bucket=source, Key="big", Body=os.urandom(12 * MIB))
    listed = planned(s3_source, source, "big")
    with StoreProxy(s3_source.endpoint).running() as proxy:
        proxy.cut = a_source_stream
        copier = in_parts(proxy, s3_source, s3_destination)

        # When it is copied
        with pytest.raises(s3.S3Error) as raised:
            await copier.copy(source, "big", destination, "big", listed.size, listed.etag)

    # Then the copy failed as worth trying again, saying so, with nothing signed in it
    error = raised.value
    assert (error.reason, error.transient) == ("timeout", True)
    assert str(error) == (
        f"copying 'big' in bucket {source!r} at the source {proxy.url} failed: it closed the "
        "connection"
        " before the end of its answer"
    )
    assert open_uploads(s3_client_for(s3_destination), destination) == []
    assert listed.key not in {
        item["Key"]
        for item in s3_client_for(s3_destination)
        .list_objects_v2(Bucket=destination)
        .get("Contents", [])
    }


async def test_a_body_stored_encoded_is_copied_as_stored(
    moto_s3: EmbeddedS3, s3_destination: EmbeddedS3, make_bucket: MakeBucket
) -> None:
    # Given a 12 MiB object stored with Content-Encoding: gzip (bytes that are not gzip)
    source, destination = make_bucket(moto_s3), make_bucket(s3_destination)
    body = os.urandom(12 * MIB)
    s3_client_for(moto_s3).put_object(Bucket=source, Key="big", Body=body, ContentEncoding="gzip")
    listed = planned(moto_s3, source, "big")

    # When it is copied in parts
    with StoreProxy(moto_s3.endpoint).running() as proxy:
        copier = in_parts(proxy, moto_s3, s3_destination)
        await copier.copy(source, "big", destination, "big", listed.size, listed.etag)

    # Then its bytes arrived as stored, not decoded
    assert proxy.count(a_source_stream) == 1
    copied = s3_client_for(s3_destination).get_object(Bucket=destination, Key="big")["Body"]
    assert hashlib.md5(copied.read()).hexdigest() == hashlib.md5(body).hexdigest()
