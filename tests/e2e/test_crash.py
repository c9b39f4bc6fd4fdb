"""A transfer replica killed mid-packet: the migration still completes, counts exact."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import pytest

from launcher.embedded import EmbeddedS3
from tests.stack import RunningCstor, s3_client_for
from tests.stored_events import recorded

# Small packets of larger objects, copied a few at a time: kills land mid-packet.
pytestmark = pytest.mark.stack(packet_max_objects=50, transfer_concurrency=2)


def test_sigkill_of_transfer_mid_packet_loses_and_doubles_nothing(
    cstor: RunningCstor,
    database_url: str,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
) -> None:
    # Given a migration of 200 objects of 256 KiB under way
    source_bucket, dest_bucket = make_bucket(s3_source), make_bucket(s3_destination)
    source = s3_client_for(s3_source)
    for n in range(200):
        source.put_object(Bucket=source_bucket, Key=f"obj-{n:03d}", Body=bytes([n % 256]) * 262144)
    migration_id = cstor.migrate(
        cstor.connect(s3_source), source_bucket, cstor.connect(s3_destination), dest_bucket
    )
    destination = s3_client_for(s3_destination)
    deadline = time.monotonic() + 60
    while destination.list_objects_v2(Bucket=dest_bucket).get("KeyCount", 0) < 5:
        assert time.monotonic() < deadline, "copying never started"
        time.sleep(0.05)

    # When the transfer replica is killed with SIGKILL in the middle of a packet
    victim = cstor.services.processes["transfer"]
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    copied_at_kill = cstor.api.get(f"/api/v1/migrations/{migration_id}").json()["objects_copied"]
    assert copied_at_kill < 200
    # and a replica takes its place
    cstor.services.restart_exited()

    # Then the migration completes with every object counted exactly once
    state = cstor.wait_finished(migration_id, timeout=120)
    assert state["status"] == "completed"
    assert state["objects_copied"] == state["objects_planned"] == 200
    assert state["objects_failed"] == 0
    assert destination.list_objects_v2(Bucket=dest_bucket)["KeyCount"] == 200
    # And the event store holds exactly one outcome per object
    outcomes = recorded(database_url, "ObjectTransfer.Copied", "ObjectTransfer.Failed")
    assert outcomes == (200, 200)
