"""A store's refusal reaches people in full: an object's recorded error names the side
(source or destination), the store, the bucket, the key, the S3 code and the store's
own message, whichever request of the copy was refused."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from cstor import contracts, s3
from cstor.s3.redaction import store_name
from launcher.embedded import EmbeddedS3
from services.transfer.copying import PacketCopier
from tests.s3_objects import endpoint_of, planned
from tests.stack import s3_client_for
from tests.store_proxy import Seen, StoreProxy

MakeBucket = Callable[[EmbeddedS3], str]
MIB = 1024 * 1024
SAID = "Object name contains unsupported characters."


@pytest.fixture
def proxy(s3_source: EmbeddedS3) -> Iterator[StoreProxy]:
    """Both sides are rclone servers; the refusing side is reached through this proxy."""
    with StoreProxy(s3_source.endpoint).running() as running:
        yield running


def packet_of(
    source_bucket: str, destination_bucket: str, key: str, size: int, etag: str
) -> contracts.PacketPlanned:
    return contracts.PacketPlanned(
        event_id=uuid.uuid4(), migration_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
        position=1, packet_id=uuid.uuid4(), sequence=0,
        source_connection_id=uuid.uuid4(), source_bucket=source_bucket, source_prefix="",
        destination_connection_id=uuid.uuid4(), destination_bucket=destination_bucket,
        destination_prefix="", objects=[contracts.PacketObject(key, size, etag)],
    )  # fmt: skip


def whole_put(seen: Seen) -> bool:
    return seen.method == "PUT" and "partNumber=" not in seen.query


def part_put(seen: Seen) -> bool:
    return seen.method == "PUT" and "partNumber=" in seen.query


def object_get(seen: Seen) -> bool:
    # Not the HEAD: an answer to a HEAD has no body, so neither code nor message.
    return seen.method == "GET" and "list-type" not in seen.query


@pytest.mark.parametrize(
    ("side", "size", "refused"),
    [
        ("destination", 1024, whole_put),  # the small objects' PUT (wire)
        ("destination", 12 * MIB, part_put),  # a part of a multipart upload (urllib3)
        ("source", 1024, object_get),  # the small objects' GET (wire)
        ("source", 12 * MIB, object_get),  # the source stream of a multipart copy (urllib3)
    ],
)
async def test_a_refused_object_is_recorded_with_side_store_bucket_key_code_and_message(
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    proxy: StoreProxy,
    make_bucket: MakeBucket,
    side: str,
    size: int,
    refused: Callable[[Seen], bool],
) -> None:
    # Given an object, and one side that refuses one of the copy's requests with a message
    source_bucket, destination_bucket = make_bucket(s3_source), make_bucket(s3_destination)
    key = "dir/it's here.bin"
    s3_client_for(s3_source).put_object(Bucket=source_bucket, Key=key, Body=b"z" * size)
    listed = planned(s3_source, source_bucket, key)
    refusing = s3_source if side == "source" else s3_destination
    proxy.upstream = StoreProxy(refusing.endpoint).upstream
    proxy.answer = lambda seen: 400 if refused(seen) else None
    proxy.said = ("InvalidArgument", SAID)
    through = s3.Endpoint(
        url=proxy.url, access_key=refusing.access_key, secret_key=refusing.secret_key
    )
    source = through if side == "source" else endpoint_of(s3_source)
    destination = through if side == "destination" else endpoint_of(s3_destination)
    copier = s3.ObjectCopier(
        source, destination, multipart_threshold=5 * MIB, min_part_size=5 * MIB
    )

    # When it is copied
    packet = packet_of(source_bucket, destination_bucket, key, listed.size, listed.etag)
    copying = PacketCopier(asyncio.Semaphore(4), attempts=3)
    (result,) = await copying.copy_packet(packet, copier, packet.objects, lambda: False)

    # Then its recorded error names the side, the store, the bucket, the key, the code
    # and the store's own message, on one line
    assert result is not None
    assert (result.copied, result.reason) == (False, "s3-error")
    bucket = source_bucket if side == "source" else destination_bucket
    message = result.message
    for fact in (
        f"the {side} {store_name(proxy.url)}",
        f"bucket {bucket!r}",
        repr(key),
        "InvalidArgument",
        SAID,
    ):
        assert fact in message, (fact, message)
    assert "\n" not in message
