"""Two transfer replicas share one durable consumer: both work, nothing is done twice."""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from launcher.embedded import EmbeddedS3
from tests.stack import RunningCstor, s3_client_for

TRANSFERRED = re.compile(
    r"replica (\S+) transferred packet (\d+) of (\S+): (\d+) copied, (\d+) failed"
)


pytestmark = pytest.mark.stack(transfer_replicas=2, packet_max_objects=10)


def test_two_replicas_share_the_packets_of_a_migration(
    cstor: RunningCstor,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
) -> None:
    # Given two transfer replicas and a migration of 400 objects in packets of 10
    source_bucket, dest_bucket = make_bucket(s3_source), make_bucket(s3_destination)
    source = s3_client_for(s3_source)
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda n: source.put_object(Bucket=source_bucket, Key=f"o/{n:03d}", Body=b"x" * n),
                range(400),
            )
        )

    # When it runs
    migration_id = cstor.migrate(
        cstor.connect(s3_source), source_bucket, cstor.connect(s3_destination), dest_bucket
    )
    state = cstor.wait_finished(migration_id, timeout=120)

    # Then every object was copied once
    assert state["status"] == "completed"
    assert (state["objects_copied"], state["objects_failed"]) == (400, 0)
    destination = s3_client_for(s3_destination)
    keys = [
        obj["Key"]
        for page in destination.get_paginator("list_objects_v2").paginate(Bucket=dest_bucket)
        for obj in page.get("Contents", [])
    ]
    assert len(keys) == 400
    # And each replica transferred some of the 40 packets, no packet by both
    logs = cstor.settings.data_dir / "logs"
    done: dict[str, list[tuple[int, int]]] = {}
    for label in ("transfer-0", "transfer-1"):
        for match in TRANSFERRED.finditer((logs / f"{label}.log").read_text()):
            if match.group(3) == migration_id:
                done.setdefault(label, []).append((int(match.group(2)), int(match.group(4))))
    assert set(done) == {"transfer-0", "transfer-1"}, done
    packets = [packet for work in done.values() for packet, _ in work]
    assert sorted(packets) == list(range(40))
    assert sum(copied for work in done.values() for _, copied in work) == 400
