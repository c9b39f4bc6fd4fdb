"""Pause takes effect in flight, resume continues without recopying, cancel ends it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from launcher.embedded import EmbeddedS3
from tests.stack import RunningCstor, s3_client_for
from tests.stored_events import recorded

OBJECTS = 300


# Few copies at a time, so a migration is still copying when the test acts on it.
pytestmark = pytest.mark.stack(packet_max_objects=50, transfer_concurrency=2)


def destination_state(server: EmbeddedS3, bucket: str) -> dict[str, Any]:
    client = s3_client_for(server)
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            found[obj["Key"]] = (obj["LastModified"], obj["ETag"])
    return found


def copies_recorded(database_url: str) -> tuple[int, int]:
    return recorded(database_url, "ObjectTransfer.Copied")


def start_copying(
    cstor: RunningCstor,
    source: EmbeddedS3,
    destination: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
) -> tuple[str, str]:
    source_bucket, dest_bucket = make_bucket(source), make_bucket(destination)
    client = s3_client_for(source)
    for n in range(OBJECTS):
        client.put_object(Bucket=source_bucket, Key=f"p/{n:04d}", Body=bytes([n % 256]) * 131072)
    migration_id = cstor.migrate(
        cstor.connect(source), source_bucket, cstor.connect(destination), dest_bucket
    )
    deadline = time.monotonic() + 60
    while len(destination_state(destination, dest_bucket)) < 20:
        assert time.monotonic() < deadline, "copying never started"
        time.sleep(0.1)
    return migration_id, dest_bucket


def test_pause_stops_copying_within_seconds_and_resume_finishes_without_recopying(
    cstor: RunningCstor,
    database_url: str,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
) -> None:
    # Given a migration in the middle of copying
    migration_id, dest_bucket = start_copying(cstor, s3_source, s3_destination, make_bucket)

    # When it is paused
    response = cstor.api.post(f"/api/v1/migrations/{migration_id}/pause")
    assert response.status_code == 201, response.text
    time.sleep(5)
    at_pause = destination_state(s3_destination, dest_bucket)
    time.sleep(3)

    # Then nothing more is written after five seconds, and it says it is paused
    assert destination_state(s3_destination, dest_bucket) == at_pause
    assert len(at_pause) < OBJECTS
    assert cstor.wait_until(migration_id, lambda s: s["status"] == "paused")

    # When it is resumed
    response = cstor.api.post(f"/api/v1/migrations/{migration_id}/resume")
    assert response.status_code == 201, response.text
    state = cstor.wait_until(migration_id, lambda s: s["status"] == "completed", timeout=180)

    # Then every object is copied exactly once, and those copied before the pause were
    # not written again
    assert state["objects_copied"] == state["objects_planned"] == OBJECTS
    assert copies_recorded(database_url) == (OBJECTS, OBJECTS)
    after = destination_state(s3_destination, dest_bucket)
    assert len(after) == OBJECTS
    assert all(after[key] == seen for key, seen in at_pause.items())


def test_cancel_ends_the_migration_and_keeps_what_was_copied(
    cstor: RunningCstor,
    database_url: str,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
) -> None:
    # Given a migration in the middle of copying
    migration_id, dest_bucket = start_copying(cstor, s3_source, s3_destination, make_bucket)

    # When it is cancelled
    response = cstor.api.post(f"/api/v1/migrations/{migration_id}/cancel")
    assert response.status_code == 201, response.text
    time.sleep(5)
    at_cancel = destination_state(s3_destination, dest_bucket)
    time.sleep(3)

    # Then it ends cancelled, copying stops, and its counts match what was recorded
    state = cstor.wait_until(migration_id, lambda s: s["status"] == "cancelled")
    assert destination_state(s3_destination, dest_bucket) == at_cancel
    copied, _ = copies_recorded(database_url)
    assert copied < OBJECTS
    state = cstor.api.get(f"/api/v1/migrations/{migration_id}").json()
    assert state["objects_copied"] == copied
    assert state["status"] == "cancelled"
    # And it cannot be resumed or cancelled again
    assert cstor.api.post(f"/api/v1/migrations/{migration_id}/resume").status_code == 409
    assert cstor.api.post(f"/api/v1/migrations/{migration_id}/cancel").status_code == 409
