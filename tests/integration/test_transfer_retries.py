"""Which failures are tried again, and how an object ends when they keep failing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError

from cstor import contracts, s3
from cstor.app.results import CopyResult
from cstor.s3.errors import from_boto
from launcher.embedded import EmbeddedS3, free_port
from services.transfer.copying import PacketCopier
from tests.s3_objects import endpoint_of, planned
from tests.stack import s3_client_for

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
        assert from_boto(error, "http://store", "copying").transient


def test_a_slow_down_answer_says_so() -> None:
    answer = ClientError(
        {"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "PutObject"
    )
    error = from_boto(answer, "http://store", "writing 'k'")
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
