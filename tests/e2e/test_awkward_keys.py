"""Keys that trip up copy tools, and buckets that are not what they seem: each is planned and
copied exactly, or refused with a clear reason."""

from __future__ import annotations

from collections.abc import Callable

from launcher.embedded import EmbeddedS3
from tests.stack import RunningCstor, s3_client_for

AWKWARD_KEYS = [
    "unicode/ångström/日本語/😀.txt",
    "spaces/a key with spaces.txt",
    "plus/a+b+c.txt",
    "percent/100%.txt",
    "percent/%2F-not-a-slash",
    "hash/#1.txt",
    "question/what?.txt",
    "/leading-slash",
    "double//slash",
    "folder-marker/",
    "long/" + "k" * 1019,  # 1,024 bytes
]


def test_awkward_keys_arrive_byte_for_byte(
    cstor: RunningCstor, moto_s3: EmbeddedS3, make_bucket: Callable[[EmbeddedS3], str]
) -> None:
    # Given a bucket whose keys use unicode, reserved characters, odd slashes, a zero-byte
    # folder marker and the longest key S3 allows (moto keeps keys exactly as given)
    source_bucket, dest_bucket = make_bucket(moto_s3), make_bucket(moto_s3)
    client = s3_client_for(moto_s3)
    for n, key in enumerate(AWKWARD_KEYS):
        body = b"" if key.endswith("/") else b"%d" % n
        client.put_object(Bucket=source_bucket, Key=key, Body=body)
    assert len(AWKWARD_KEYS[-1].encode()) == 1024

    # When they are migrated (two connections to the same store)
    migration_id = cstor.migrate(
        cstor.connect(moto_s3, "a"), source_bucket, cstor.connect(moto_s3, "b"), dest_bucket
    )
    state = cstor.wait_finished(migration_id)

    # Then each key arrives as it was, with its bytes
    assert state["status"] == "completed", state
    assert state["objects_copied"] == len(AWKWARD_KEYS)
    listed = client.list_objects_v2(Bucket=dest_bucket)["Contents"]
    assert sorted(obj["Key"] for obj in listed) == sorted(AWKWARD_KEYS)
    for n, key in enumerate(AWKWARD_KEYS):
        expected = b"" if key.endswith("/") else b"%d" % n
        assert client.get_object(Bucket=dest_bucket, Key=key)["Body"].read() == expected


def test_a_bucket_deleted_before_planning_fails_the_migration_with_its_reason(
    cstor: RunningCstor, moto_s3: EmbeddedS3, make_bucket: Callable[[EmbeddedS3], str]
) -> None:
    # Given a migration whose source bucket disappears before the planner lists it
    source_bucket, dest_bucket = make_bucket(moto_s3), make_bucket(moto_s3)
    cstor.services.processes["planner"].terminate()
    cstor.services.processes["planner"].wait()
    migration_id = cstor.migrate(
        cstor.connect(moto_s3, "a"), source_bucket, cstor.connect(moto_s3, "b"), dest_bucket
    )
    s3_client_for(moto_s3).delete_bucket(Bucket=source_bucket)
    # When the planner takes it
    cstor.services.restart_exited()
    state = cstor.wait_finished(migration_id)
    # Then the migration fails, saying why
    assert state["status"] == "failed"
    assert "no-such-bucket" in state["error"]
