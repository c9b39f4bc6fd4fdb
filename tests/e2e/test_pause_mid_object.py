"""Pause takes effect between the parts of a large object: its upload and parts are kept,
resume goes on from them, and cancel aborts the upload."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from typing import Any

import pytest

from cstor.domain.checksums import MIB
from launcher.embedded import EmbeddedS3
from tests.s3_objects import journaled_parts, open_uploads
from tests.stack import RunningCstor, s3_client_for

MakeBucket = Callable[[EmbeddedS3], str]
SIZE = 60 * MIB  # twelve parts of 5 MiB


# 5 MiB parts, one in flight: a 60 MiB object is twelve parts, one after the other.
pytestmark = pytest.mark.stack(
    transfer_multipart_threshold=5 * MIB,
    transfer_part_size=5 * MIB,
    transfer_parts_per_object=1,
    transfer_memory=16 * MIB,
)


def parts_uploaded(client: Any, bucket: str) -> int:
    """The parts moto holds for the bucket's one open upload (0 if none is open)."""
    uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    if not uploads:
        return 0
    (upload,) = uploads
    listing = client.list_parts(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    return len(listing.get("Parts", []))


def start_large_copy(
    cstor: RunningCstor,
    database_url: str,
    source: EmbeddedS3,
    destination: EmbeddedS3,
    make_bucket: MakeBucket,
) -> tuple[str, str, bytes]:
    """A migration of one 60 MiB object at 4 MiB/s, once three of its parts are in."""
    source_bucket, dest_bucket = make_bucket(source), make_bucket(destination)
    body = os.urandom(SIZE)
    s3_client_for(source).put_object(Bucket=source_bucket, Key="big.bin", Body=body)
    migration_id = cstor.migrate(
        cstor.connect(source, "rclone"), source_bucket, cstor.connect(destination, "moto"),
        dest_bucket, limits={"bandwidth_bytes_per_second": 4 * MIB},
    )  # fmt: skip
    deadline = time.monotonic() + 90
    while journaled_parts(database_url) < 3:
        assert time.monotonic() < deadline, "the upload never got three parts in"
        time.sleep(0.05)
    return migration_id, dest_bucket, body


def test_pause_stops_a_large_object_between_parts_and_resume_goes_on_from_them(
    cstor: RunningCstor,
    database_url: str,
    s3_source: EmbeddedS3,
    moto_s3: EmbeddedS3,
    make_bucket: MakeBucket,
) -> None:
    # Given a 60 MiB object being copied to moto in twelve parts, three of them in
    migration_id, dest_bucket, body = start_large_copy(
        cstor, database_url, s3_source, moto_s3, make_bucket
    )
    destination = s3_client_for(moto_s3)
    log = cstor.settings.data_dir / "logs" / "transfer.log"

    # When the migration is paused
    response = cstor.api.post(f"/api/v1/migrations/{migration_id}/pause")
    assert response.status_code == 201, response.text
    time.sleep(5)
    parts_at_pause = parts_uploaded(destination, dest_bucket)
    time.sleep(3)

    # Then within five seconds no more parts go up; the upload stays open with its
    # parts, journaled, and nothing is recorded for the object
    assert parts_uploaded(destination, dest_bucket) == parts_at_pause
    assert 3 <= parts_at_pause < 12
    assert len(open_uploads(destination, dest_bucket)) == 1
    assert journaled_parts(database_url) == parts_at_pause
    state = cstor.wait_until(migration_id, lambda s: s["status"] == "paused")
    assert (state["objects_copied"], state["objects_failed"]) == (0, 0)
    log_at_pause = log.stat().st_size

    # When it is resumed
    response = cstor.api.post(f"/api/v1/migrations/{migration_id}/resume")
    assert response.status_code == 201, response.text
    state = cstor.wait_finished(migration_id, timeout=180)

    # Then the object is copied once and verified, going on from the parts kept
    assert state["status"] == "completed"
    assert (state["objects_copied"], state["objects_failed"]) == (1, 0)
    copy = destination.get_object(Bucket=dest_bucket, Key="big.bin")
    assert hashlib.md5(copy["Body"].read()).digest() == hashlib.md5(body).digest()
    assert copy["ETag"].strip('"').endswith("-12")
    assert f"resuming 'big.bin': {parts_at_pause} of 12 parts" in log.read_text()[log_at_pause:]
    # And no upload is left open, nor any journal entry
    assert open_uploads(destination, dest_bucket) == []
    assert journaled_parts(database_url) == 0


def test_cancel_after_a_pause_mid_object_aborts_the_kept_upload(
    cstor: RunningCstor,
    database_url: str,
    s3_source: EmbeddedS3,
    moto_s3: EmbeddedS3,
    make_bucket: MakeBucket,
) -> None:
    # Given a large object paused between parts, its upload kept open
    migration_id, dest_bucket, _ = start_large_copy(
        cstor, database_url, s3_source, moto_s3, make_bucket
    )
    destination = s3_client_for(moto_s3)
    assert cstor.api.post(f"/api/v1/migrations/{migration_id}/pause").status_code == 201
    cstor.wait_until(migration_id, lambda s: s["status"] == "paused")
    deadline = time.monotonic() + 10
    while parts_uploaded(destination, dest_bucket) != journaled_parts(database_url):
        assert time.monotonic() < deadline, "the parts in flight never settled"
        time.sleep(0.1)
    assert len(open_uploads(destination, dest_bucket)) == 1

    # When the migration is cancelled
    assert cstor.api.post(f"/api/v1/migrations/{migration_id}/cancel").status_code == 201

    # Then it ends cancelled, with the upload aborted and nothing left in the journal
    state = cstor.wait_until(migration_id, lambda s: s["status"] == "cancelled")
    assert (state["objects_copied"], state["objects_failed"]) == (0, 0)
    deadline = time.monotonic() + 90
    while open_uploads(destination, dest_bucket):
        assert time.monotonic() < deadline, "the kept upload was never aborted"
        time.sleep(0.2)
    assert journaled_parts(database_url) == 0
    assert "big.bin" not in [
        obj["Key"] for obj in destination.list_objects_v2(Bucket=dest_bucket).get("Contents", [])
    ]


def test_cancel_mid_object_aborts_its_upload(
    cstor: RunningCstor,
    database_url: str,
    s3_source: EmbeddedS3,
    moto_s3: EmbeddedS3,
    make_bucket: MakeBucket,
) -> None:
    # Given a 60 MiB object being copied to moto in twelve parts, three of them in
    migration_id, dest_bucket, _ = start_large_copy(
        cstor, database_url, s3_source, moto_s3, make_bucket
    )
    destination = s3_client_for(moto_s3)
    assert len(open_uploads(destination, dest_bucket)) == 1

    # When the migration is cancelled while the parts go up
    assert cstor.api.post(f"/api/v1/migrations/{migration_id}/cancel").status_code == 201

    # Then it ends cancelled, its upload aborted between parts, the journal empty
    state = cstor.wait_until(migration_id, lambda s: s["status"] == "cancelled")
    assert (state["objects_copied"], state["objects_failed"]) == (0, 0)
    deadline = time.monotonic() + 30
    while open_uploads(destination, dest_bucket) or journaled_parts(database_url):
        assert time.monotonic() < deadline, "the upload was never aborted"
        time.sleep(0.2)
    assert "big.bin" not in [
        obj["Key"] for obj in destination.list_objects_v2(Bucket=dest_bucket).get("Contents", [])
    ]
