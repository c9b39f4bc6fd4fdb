"""Failed objects are visible with their reasons and can be queued again, counts exact."""

from __future__ import annotations

from collections.abc import Callable

from launcher.embedded import EmbeddedS3
from tests.stack import RunningCstor, s3_client_for
from tests.stored_events import recorded


def test_failures_are_listed_and_retried_until_every_object_is_copied(
    cstor: RunningCstor,
    database_url: str,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
) -> None:
    # Given a planned migration of 10 objects whose copying has not started
    source_bucket, dest_bucket = make_bucket(s3_source), make_bucket(s3_destination)
    source = s3_client_for(s3_source)
    objects = {f"r/{n}": b"body %d" % n for n in range(10)}
    for key, body in objects.items():
        source.put_object(Bucket=source_bucket, Key=key, Body=body)
    transfer = cstor.services.processes["transfer"]
    transfer.terminate()
    transfer.wait()
    migration_id = cstor.migrate(
        cstor.connect(s3_source), source_bucket, cstor.connect(s3_destination), dest_bucket
    )
    cstor.wait_until(migration_id, lambda s: s["planning_done"] and s["objects_planned"] == 10)

    # When two source objects vanish before they are copied
    source.delete_object(Bucket=source_bucket, Key="r/3")
    source.delete_object(Bucket=source_bucket, Key="r/7")
    cstor.services.restart_exited()
    state = cstor.wait_finished(migration_id)

    # Then the migration completes with them failed, each with its reason
    assert (state["status"], state["objects_copied"], state["objects_failed"]) == (
        "completed",
        8,
        2,
    )
    failed = cstor.api.get(
        f"/api/v1/migrations/{migration_id}/objects", params={"status": "failed"}
    ).json()["items"]
    assert [item["key"] for item in failed] == ["r/3", "r/7"]
    assert all("source-missing" in item["error"] for item in failed)

    # When the objects are back (one as it was, one changed) and the failures are retried
    source.put_object(Bucket=source_bucket, Key="r/3", Body=objects["r/3"])
    objects["r/7"] = b"changed since"
    source.put_object(Bucket=source_bucket, Key="r/7", Body=objects["r/7"])
    response = cstor.api.post(f"/api/v1/migrations/{migration_id}/retry-failed")
    assert response.status_code == 201, response.text
    state = cstor.wait_until(
        migration_id, lambda s: s["status"] == "completed" and s["objects_copied"] == 10
    )

    # Then every object is copied, none failed, and each has exactly one copy recorded
    assert state["objects_failed"] == 0
    destination = s3_client_for(s3_destination)
    for key, body in objects.items():
        assert destination.get_object(Bucket=dest_bucket, Key=key)["Body"].read() == body
    assert recorded(database_url, "ObjectTransfer.Copied") == (10, 10)
    # And retrying again has nothing to do
    again = cstor.api.post(f"/api/v1/migrations/{migration_id}/retry-failed")
    assert again.status_code == 409
