"""The planner killed mid-listing resumes from its checkpoint: nothing planned twice."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import pytest

from launcher.embedded import EmbeddedS3
from tests.stack import RunningCstor, s3_client_for
from tests.stored_events import recorded

OBJECTS = 3000


pytestmark = pytest.mark.stack(packet_max_objects=25)


def test_sigkill_mid_listing_resumes_without_planning_twice(
    cstor: RunningCstor,
    database_url: str,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
) -> None:
    # Given a source of 3,000 objects being planned in packets of 25
    source_bucket, dest_bucket = make_bucket(s3_source), make_bucket(s3_destination)
    client = s3_client_for(s3_source)
    for n in range(OBJECTS):
        client.put_object(Bucket=source_bucket, Key=f"obj/{n:05d}", Body=b"%d" % n)
    migration_id = cstor.migrate(
        cstor.connect(s3_source), source_bucket, cstor.connect(s3_destination), dest_bucket
    )
    deadline = time.monotonic() + 60
    while recorded(database_url, "Packet.Planned")[0] < 3:
        assert time.monotonic() < deadline, "planning never started"
        time.sleep(0.02)

    # When the planner is killed in the middle of the listing, and comes back
    planner = cstor.services.processes["planner"]
    planner.send_signal(signal.SIGKILL)
    planner.wait()
    planned_at_kill = recorded(database_url, "Packet.Planned")[0]
    assert planned_at_kill < OBJECTS // 25, "the kill came after planning had finished"
    cstor.services.restart_exited()

    # Then the migration completes with every object planned exactly once, counts exact
    state = cstor.wait_finished(migration_id, timeout=180)
    assert state["status"] == "completed"
    assert state["objects_planned"] == state["objects_copied"] == OBJECTS
    assert recorded(database_url, "ObjectTransfer.Planned") == (OBJECTS, OBJECTS)
    assert recorded(database_url, "Packet.Planned") == (OBJECTS // 25, OBJECTS // 25)
    assert recorded(database_url, "Migration.Planned") == (1, 1)
