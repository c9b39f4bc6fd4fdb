"""A destination object whose metadata cannot be read fails alone: the migration goes on.

The planner reads a destination object's metadata (HEAD) when the listings cannot tell
whether it is the source's copy: equal sizes, ETags not comparable (a multipart source
ETag against a single-part copy). Here moto is the source and rclone the destination,
behind a proxy that answers some of those HEADs itself, as a store that lists a key it
then cannot show.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cstor.s3.redaction import store_name
from launcher.embedded import EmbeddedS3
from tests.connection_forms import connection_body
from tests.stack import RunningCstor, s3_client_for
from tests.store_proxy import Seen, StoreProxy

MiB = 1024 * 1024
SIZE = 5 * MiB + 1
"""Two parts, 5 MiB and one byte: a multipart ETag at moto's smallest part size."""


@pytest.fixture
def destination_proxy(s3_destination: EmbeddedS3) -> Iterator[StoreProxy]:
    with StoreProxy(s3_destination.endpoint).running() as proxy:
        yield proxy


def put_in_two_parts(client: Any, bucket: str, key: str, body: bytes) -> None:
    upload = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = []
    for number, chunk in enumerate((body[: 5 * MiB], body[5 * MiB :]), start=1):
        part = client.upload_part(
            Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=chunk
        )
        parts.append({"PartNumber": number, "ETag": part["ETag"]})
    client.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
    )


def head_of(key: str) -> Callable[[Seen], bool]:
    return lambda seen: seen.method == "HEAD" and seen.path.endswith(f"/{key}")


def test_a_destination_object_that_cannot_be_read_fails_alone_and_can_be_retried(
    cstor: RunningCstor,
    moto_s3: EmbeddedS3,
    s3_destination: EmbeddedS3,
    destination_proxy: StoreProxy,
    make_bucket: Callable[[EmbeddedS3], str],
) -> None:
    # Given four multipart source objects, each with an object of its size at the
    # destination (another ETag: the planner must read each one's metadata to decide)
    source_bucket, dest_bucket = make_bucket(moto_s3), make_bucket(s3_destination)
    source, destination = s3_client_for(moto_s3), s3_client_for(s3_destination)
    bodies = {key: key.encode()[:1] * SIZE for key in ("broken", "denied", "fine", "gone")}
    for key, body in bodies.items():
        put_in_two_parts(source, source_bucket, key, body)
        destination.put_object(Bucket=dest_bucket, Key=key, Body=b"o" * SIZE)
    # And a destination whose HEAD of "gone" says it is not there (once), of "denied" that
    # it is forbidden, and of "broken" that it failed, however often it is asked
    statuses = {"denied": 403, "broken": 500}
    answered_gone: list[Seen] = []

    def answer(seen: Seen) -> int | None:
        if head_of("gone")(seen) and not answered_gone:
            answered_gone.append(seen)
            return 404
        return next((s for key, s in statuses.items() if head_of(key)(seen)), None)

    destination_proxy.answer = answer
    response = cstor.api.post(
        "/api/v1/connections",
        json=connection_body(s3_destination, "destination", endpoint=destination_proxy.url),
    )
    assert response.status_code == 201, response.text
    destination_id = response.json()["id"]

    # When the migration runs
    migration_id = cstor.migrate(
        cstor.connect(moto_s3, "source"), source_bucket, destination_id, dest_bucket
    )
    state = cstor.wait_finished(migration_id)

    # Then it completes: "gone" (answered 404 once, by the planner's HEAD) is copied, not
    # there being not there, as is "fine", whose metadata was read; "denied" and "broken"
    # failed, each on its own
    assert (state["status"], state["objects_copied"], state["objects_failed"]) == (
        "completed",
        2,
        2,
    ), state
    assert len(answered_gone) == 1
    for key in ("fine", "gone"):
        assert destination.get_object(Bucket=dest_bucket, Key=key)["Body"].read() == bodies[key]
    for key in ("broken", "denied"):
        assert destination.get_object(Bucket=dest_bucket, Key=key)["Body"].read()[:1] == b"o"
    # And each failure says it was the destination, naming bucket, key, endpoint and status
    failed = cstor.api.get(
        f"/api/v1/migrations/{migration_id}/objects", params={"status": "failed"}
    ).json()["items"]
    assert [item["key"] for item in failed] == ["broken", "denied"]
    errors = {item["key"]: item["error"] for item in failed}
    for key, status in statuses.items():
        assert "destination" in errors[key], errors[key]
        assert f"'{key}'" in errors[key], errors[key]
        assert f"'{dest_bucket}'" in errors[key], errors[key]
        assert store_name(destination_proxy.url) in errors[key], errors[key]
        assert f"HTTP {status}" in errors[key], errors[key]
    assert errors["denied"].startswith("access-denied: ")
    assert errors["broken"].startswith("server-error: ")
    # And the report counts them failed too
    report = cstor.api.get(f"/api/v1/migrations/{migration_id}/report.json").json()
    assert sorted(row["key"] for row in report if row["status"] == "failed") == [
        "broken",
        "denied",
    ]
    # And the planner's log has one line for each
    log = (cstor.settings.data_dir / "logs" / "planner.log").read_text()
    for key in statuses:
        assert sum(f"'{key}'" in line for line in log.splitlines()) == 1, log[-3000:]

    # When the destination answers again and the failures are retried
    destination_proxy.answer = lambda _: None
    response = cstor.api.post(f"/api/v1/migrations/{migration_id}/retry-failed")
    assert response.status_code == 201, response.text
    state = cstor.wait_until(
        migration_id, lambda s: s["status"] == "completed" and s["objects_copied"] == 4
    )

    # Then every object is copied and none failed
    assert state["objects_failed"] == 0
    for key, body in bodies.items():
        assert destination.get_object(Bucket=dest_bucket, Key=key)["Body"].read() == body
