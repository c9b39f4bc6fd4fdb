"""A transfer replica killed in the middle of a multipart upload: the next one resumes it."""

from __future__ import annotations

import hashlib
import os
import signal
import time
from collections.abc import Callable

import pytest

from cstor.domain.checksums import MIB
from launcher.embedded import EmbeddedS3
from tests.s3_objects import journaled_parts, open_uploads
from tests.stack import RunningCstor, s3_client_for

# 5 MiB parts, one at a time: a 60 MiB object is twelve parts, slow enough to kill mid-way.
pytestmark = pytest.mark.stack(
    transfer_concurrency=1,
    transfer_multipart_threshold=5 * MIB,
    transfer_part_size=5 * MIB,
    transfer_parts_per_object=1,
    transfer_memory=16 * MIB,
)


def test_sigkill_mid_multipart_resumes_from_finished_parts_and_leaves_no_upload(
    cstor: RunningCstor,
    database_url: str,
    s3_source: EmbeddedS3,
    moto_s3: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
) -> None:
    # Given a migration of one 60 MiB object to moto, its multipart upload under way
    source_bucket, dest_bucket = make_bucket(s3_source), make_bucket(moto_s3)
    body = os.urandom(60 * MIB)
    s3_client_for(s3_source).put_object(Bucket=source_bucket, Key="big.bin", Body=body)
    migration_id = cstor.migrate(
        cstor.connect(s3_source, "rclone"), source_bucket, cstor.connect(moto_s3, "moto"),
        dest_bucket,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while journaled_parts(database_url) < 3:
        assert time.monotonic() < deadline, "the upload never got three parts in"
        time.sleep(0.02)

    # When the transfer replica is killed with SIGKILL between parts
    victim = cstor.services.processes["transfer"]
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    destination = s3_client_for(moto_s3)
    assert len(open_uploads(destination, dest_bucket)) == 1
    finished_at_kill = journaled_parts(database_url)
    assert finished_at_kill < 12
    log = cstor.settings.data_dir / "logs" / "transfer.log"
    log_at_kill = log.stat().st_size
    # and a replica takes its place
    cstor.services.restart_exited()

    # Then the migration completes with the one object copied and verified
    state = cstor.wait_finished(migration_id, timeout=120)
    assert state["status"] == "completed"
    assert (state["objects_copied"], state["objects_failed"]) == (1, 0)
    copy = destination.get_object(Bucket=dest_bucket, Key="big.bin")
    assert hashlib.md5(copy["Body"].read()).digest() == hashlib.md5(body).digest()
    assert copy["ETag"].strip('"').endswith("-12")
    # And the new replica resumed from the parts already there, not from zero
    assert "resuming 'big.bin'" in log.read_text()[log_at_kill:]
    # And no multipart upload is left open, nor any journal entry
    assert open_uploads(destination, dest_bucket) == []
    assert journaled_parts(database_url) == 0
