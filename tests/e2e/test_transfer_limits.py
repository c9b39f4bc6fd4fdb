"""A migration's limits hold across transfer replicas: concurrent objects and bandwidth."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from cstor.domain.checksums import MIB
from cstor.domain.exceptions import InvalidRequest
from cstor.domain.migration import checked_limits
from launcher.embedded import EmbeddedS3
from tests.stack import RunningCstor, s3_client_for

MakeBucket = Callable[[EmbeddedS3], str]
TRANSFERRED = re.compile(r"replica \S+ transferred packet \d+ of (\S+): (\d+) copied")


# Two replicas; one object per packet, so both replicas get objects of one migration;
# 5 MiB parts, so an object in flight is an upload the destination can be asked about.
pytestmark = pytest.mark.stack(
    transfer_replicas=2,
    packet_max_objects=1,
    transfer_multipart_threshold=5 * MIB,
    transfer_part_size=5 * MIB,
)


class OpenUploads:
    """Watches a bucket's open multipart uploads at the destination, as its server lists them."""

    def __init__(self, server: EmbeddedS3, bucket: str) -> None:
        self.client = s3_client_for(server)
        self.bucket = bucket
        self.most_at_once = 0
        self.keys: set[str] = set()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> OpenUploads:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._done.is_set():
            uploads = self.client.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])
            self.most_at_once = max(self.most_at_once, len(uploads))
            self.keys.update(upload["Key"] for upload in uploads)
            time.sleep(0.01)


def put_objects(server: EmbeddedS3, bucket: str, count: int, size: int) -> None:
    client = s3_client_for(server)
    with ThreadPoolExecutor(4) as pool:
        list(
            pool.map(
                lambda n: client.put_object(Bucket=bucket, Key=f"o/{n:02d}", Body=os.urandom(size)),
                range(count),
            )
        )


def copied_by_replica(cstor: RunningCstor, migration_id: str) -> dict[str, int]:
    logs = cstor.settings.data_dir / "logs"
    copied: dict[str, int] = {}
    for label in ("transfer-0", "transfer-1"):
        for match in TRANSFERRED.finditer((logs / f"{label}.log").read_text()):
            if match.group(1) == migration_id:
                copied[label] = copied.get(label, 0) + int(match.group(2))
    return copied


def test_limits_are_whole_numbers_within_bounds_and_none_is_no_limit() -> None:
    assert checked_limits({"bandwidth_bytes_per_second": None, "concurrent_objects": 3}) == {
        "concurrent_objects": 3
    }
    for wrong in (0, -1, 10_001, 2.5, True):
        with pytest.raises(InvalidRequest, match=r"limits\.concurrent_objects"):
            checked_limits({"concurrent_objects": wrong})  # type: ignore[dict-item]
    with pytest.raises(InvalidRequest, match="no such limit"):
        checked_limits({"objects_per_second": 5})


def test_concurrent_objects_1_copies_one_object_at_a_time_across_two_replicas(
    cstor: RunningCstor, s3_source: EmbeddedS3, moto_s3: EmbeddedS3, make_bucket: MakeBucket
) -> None:
    # Given two replicas and eight 11 MiB objects (three parts each) to copy to moto
    source_bucket, dest_bucket = make_bucket(s3_source), make_bucket(moto_s3)
    put_objects(s3_source, source_bucket, 8, 11 * MIB)
    source_id, dest_id = cstor.connect(s3_source, "rclone"), cstor.connect(moto_s3, "moto")

    # When a limit is not a whole number of at least 1, it is refused, naming the field
    response = cstor.api.post(
        "/api/v1/migrations",
        json={
            "source_connection_id": source_id,
            "source_bucket": source_bucket,
            "destination_connection_id": dest_id,
            "destination_bucket": dest_bucket,
            "limits": {"concurrent_objects": 0},
        },
    )
    assert response.status_code == 422, response.text
    assert "limits.concurrent_objects" in response.json()["detail"]

    # When the migration runs with at most one object at a time, watched at moto
    with OpenUploads(moto_s3, dest_bucket) as watched:
        migration_id = cstor.migrate(
            source_id, source_bucket, dest_id, dest_bucket, limits={"concurrent_objects": 1}
        )
        state = cstor.wait_finished(migration_id, timeout=240)

    # Then all eight were copied, by both replicas, and moto never had two uploads open
    assert (state["status"], state["objects_copied"]) == ("completed", 8)
    assert state["limits"] == {"bandwidth_bytes_per_second": None, "concurrent_objects": 1}
    assert len(copied_by_replica(cstor, migration_id)) == 2
    assert len(watched.keys) == 8  # the watch saw each object's upload while it was open
    assert watched.most_at_once == 1

    # And the same objects with no limit, watched the same way, do overlap: the watch can
    # see two copies at once when there are
    other_bucket = make_bucket(moto_s3)
    with OpenUploads(moto_s3, other_bucket) as unlimited:
        migration_id = cstor.migrate(source_id, source_bucket, dest_id, other_bucket)
        state = cstor.wait_finished(migration_id, timeout=240)
    assert (state["status"], state["objects_copied"]) == ("completed", 8)
    assert unlimited.most_at_once > 1


def test_a_bandwidth_limit_holds_for_both_replicas_together(
    cstor: RunningCstor,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: MakeBucket,
) -> None:
    # Given two replicas and 9 MiB to copy: a 6 MiB object (in parts) and twelve of 256 KiB
    source_bucket, dest_bucket = make_bucket(s3_source), make_bucket(s3_destination)
    put_objects(s3_source, source_bucket, 12, 256 * 1024)
    s3_client_for(s3_source).put_object(Bucket=source_bucket, Key="large", Body=os.urandom(6 * MIB))
    volume = 9 * MIB
    rate = 2 * MIB

    # When it is copied at no more than 2 MiB/s
    started = time.monotonic()
    migration_id = cstor.migrate(
        cstor.connect(s3_source), source_bucket, cstor.connect(s3_destination), dest_bucket,
        limits={"bandwidth_bytes_per_second": rate},
    )  # fmt: skip
    state = cstor.wait_finished(migration_id, timeout=240)
    elapsed = time.monotonic() - started

    # Then everything is copied, by both replicas, and it took at least volume / rate
    assert (state["status"], state["objects_copied"]) == ("completed", 13)
    assert state["bytes_copied"] == volume
    assert len(copied_by_replica(cstor, migration_id)) == 2
    assert elapsed >= volume / rate


def slot_holders(database_url: str) -> list[int]:
    """The pids of the transfer replicas holding a slot, from Postgres's lock table."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.objsubid = 2 AND l.granted"
            " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchall()
    return [int(name.rsplit(":", 1)[1]) for (name,) in rows]


def test_a_replica_killed_holding_the_only_slot_does_not_keep_it(
    cstor: RunningCstor,
    database_url: str,
    s3_source: EmbeddedS3,
    moto_s3: EmbeddedS3,
    make_bucket: MakeBucket,
) -> None:
    # Given two replicas copying four 16 MiB objects one at a time, at 8 MiB/s
    source_bucket, dest_bucket = make_bucket(s3_source), make_bucket(moto_s3)
    put_objects(s3_source, source_bucket, 4, 16 * MIB)
    source = s3_client_for(s3_source)
    digests = {
        f"o/{n:02d}": hashlib.md5(
            source.get_object(Bucket=source_bucket, Key=f"o/{n:02d}")["Body"].read()
        ).hexdigest()
        for n in range(4)
    }
    migration_id = cstor.migrate(
        cstor.connect(s3_source, "rclone"), source_bucket, cstor.connect(moto_s3, "moto"),
        dest_bucket, limits={"concurrent_objects": 1, "bandwidth_bytes_per_second": 8 * MIB},
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not (holders := slot_holders(database_url)):
        assert time.monotonic() < deadline, "no replica ever took the slot"
        time.sleep(0.05)

    # When the replica holding the one slot is killed with SIGKILL mid-copy
    assert len(holders) == 1
    (victim,) = [p for p in cstor.services.processes.values() if p.pid == holders[0]]
    victim.send_signal(signal.SIGKILL)
    victim.wait()

    # Then the other replica takes the slot and the migration completes, every object
    # copied once and verified, and no upload left open
    state = cstor.wait_finished(migration_id, timeout=240)
    assert (state["status"], state["objects_copied"], state["objects_failed"]) == (
        "completed", 4, 0,
    )  # fmt: skip
    destination = s3_client_for(moto_s3)
    for key, digest in digests.items():
        copy = destination.get_object(Bucket=dest_bucket, Key=key)["Body"].read()
        assert hashlib.md5(copy).hexdigest() == digest
    assert destination.list_multipart_uploads(Bucket=dest_bucket).get("Uploads", []) == []
    assert slot_holders(database_url) == []
