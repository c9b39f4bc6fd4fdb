"""A migration may give its copies a storage class: every strategy sets it at the destination."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from cstor import s3
from cstor.domain.checksums import MIB
from launcher.embedded import EmbeddedS3
from tests.s3_objects import endpoint_of, open_uploads, planned
from tests.stack import RunningCstor, s3_client_for

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MakeBucket = Callable[[EmbeddedS3], str]
ClientFor = Callable[[EmbeddedS3], "S3Client"]


def other_keys(server: EmbeddedS3) -> s3.Endpoint:
    """The same moto server under other keys: not the same credentials, so GET -> PUT."""
    return s3.Endpoint(url=server.endpoint, access_key="OTHERACCESSKEY01", secret_key="other")


STRATEGIES: dict[str, tuple[int, dict[str, Any], bool]] = {
    # name: (size, extra PUT arguments of the source, copied on the server)
    "single-part": (1024, {}, False),
    "single-part-with-expires": (1024, {"Expires": datetime(2031, 1, 1, tzinfo=UTC)}, False),
    "multipart": (12 * MIB, {}, False),
    "server-side": (3000, {}, True),
    "server-side-in-parts": (12 * MIB, {}, True),
}


@pytest.mark.parametrize("strategy", list(STRATEGIES))
async def test_each_strategy_gives_the_copy_the_migrations_storage_class(
    strategy: str, moto_s3: EmbeddedS3, make_bucket: MakeBucket, s3_client: ClientFor
) -> None:
    # Given an object on moto in the default storage class
    size, extra, on_server = STRATEGIES[strategy]
    source, destination = make_bucket(moto_s3), make_bucket(moto_s3)
    client = s3_client(moto_s3)
    client.put_object(Bucket=source, Key="k", Body=os.urandom(size), **extra)
    assert "StorageClass" not in client.head_object(Bucket=source, Key="k")
    listed = planned(moto_s3, source, "k")
    copier = s3.ObjectCopier(
        endpoint_of(moto_s3),
        endpoint_of(moto_s3) if on_server else other_keys(moto_s3),
        multipart_threshold=5 * MIB,
        min_part_size=5 * MIB,
        server_copy_threshold=5 * MIB,
        copy_part_size=5 * MIB,
    )
    assert copier.server_side == on_server

    # When it is copied for a migration that asks for STANDARD_IA
    outcome = await copier.copy(
        source, "k", destination, "k", listed.size, listed.etag,
        options=s3.CopyOptions(storage_class="STANDARD_IA"),
    )  # fmt: skip

    # Then the copy is verified and the destination keeps it as STANDARD_IA
    assert outcome.size == size
    copy = client.head_object(Bucket=destination, Key="k")
    assert copy["StorageClass"] == "STANDARD_IA"
    assert copy["ContentLength"] == size
    assert open_uploads(client, destination) == []


def test_a_migration_with_a_storage_class_copies_into_it_and_a_wrong_one_is_refused(
    cstor: RunningCstor,
    s3_source: EmbeddedS3,
    moto_s3: EmbeddedS3,
    make_bucket: MakeBucket,
) -> None:
    # Given a source of three objects on rclone and a destination bucket on moto
    source_bucket, dest_bucket = make_bucket(s3_source), make_bucket(moto_s3)
    source = s3_client_for(s3_source)
    for n in range(3):
        source.put_object(Bucket=source_bucket, Key=f"o/{n}", Body=os.urandom(100 + n))
    source_id, dest_id = cstor.connect(s3_source, "rclone"), cstor.connect(moto_s3, "moto")

    # When a migration asks for a storage class S3 does not have
    response = cstor.api.post(
        "/api/v1/migrations",
        json={
            "source_connection_id": source_id,
            "source_bucket": source_bucket,
            "destination_connection_id": dest_id,
            "destination_bucket": dest_bucket,
            "storage_class": "COLD_AS_ICE",
        },
    )

    # Then it is refused with the field named, and nothing is created
    assert response.status_code == 422, response.text
    assert "storage_class" in response.json()["detail"]
    assert cstor.api.get("/api/v1/migrations").json() == []

    # When a migration asks for ONEZONE_IA
    migration_id = cstor.migrate(
        source_id, source_bucket, dest_id, dest_bucket, storage_class="ONEZONE_IA"
    )
    state = cstor.wait_finished(migration_id)

    # Then the migration says so, and every copy is in ONEZONE_IA
    assert (state["status"], state["objects_copied"]) == ("completed", 3)
    assert state["storage_class"] == "ONEZONE_IA"
    destination = s3_client_for(moto_s3)
    for n in range(3):
        head = destination.head_object(Bucket=dest_bucket, Key=f"o/{n}")
        assert head["StorageClass"] == "ONEZONE_IA"
