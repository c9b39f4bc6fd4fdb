"""Whichever way an object was copied, a sync again finds it identical and copies nothing.

Each copy path leaves on the copy what `if-different` compares: an MD5 ETag equal to
the source's, or the source's ETag stamped as `cstor-source-etag`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from cstor.domain.checksums import SOURCE_ETAG_METADATA, is_md5_etag
from launcher.embedded import EmbeddedS3
from tests.stack import RunningCstor, s3_client_for

MiB = 1024 * 1024

# Small thresholds so that each path is taken by objects of a few MiB: a whole GET -> PUT up
# to 8 MiB, streamed 6 MiB parts above; on the server, CopyObject up to 8 MiB, 7 MiB
# UploadPartCopy parts above. None of these part sizes is the sources' (5 MiB).
pytestmark = pytest.mark.stack(
    transfer_multipart_threshold=8 * MiB,
    transfer_part_size=6 * MiB,
    server_copy_threshold=8 * MiB,
    server_copy_part_size=7 * MiB,
)

PATHS = {
    # path: (same keys on both sides, object size, parts of the copy: 0 for a single PUT)
    "whole object": (False, 6 * MiB, 0),
    "streamed parts": (False, 12 * MiB, 2),
    "server-side whole": (True, 6 * MiB, None),
    "server-side parts": (True, 12 * MiB, 2),
}


def put_in_parts(client: Any, bucket: str, key: str, body: bytes) -> str:
    """Upload `body` in 5 MiB parts; its multipart ETag."""
    upload = client.create_multipart_upload(Bucket=bucket, Key=key, Metadata={"team": "storage"})[
        "UploadId"
    ]
    parts = []
    for number, start in enumerate(range(0, len(body), 5 * MiB), start=1):
        part = client.upload_part(
            Bucket=bucket, Key=key, UploadId=upload, PartNumber=number,
            Body=body[start : start + 5 * MiB],
        )  # fmt: skip
        parts.append({"PartNumber": number, "ETag": part["ETag"]})
    client.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
    )
    return str(client.head_object(Bucket=bucket, Key=key)["ETag"]).strip('"')


def destination_connection(cstor: RunningCstor, moto_s3: EmbeddedS3, *, same_keys: bool) -> str:
    """The destination's connection: the source's keys, or other keys to the same store
    (then no server-side copy: the bytes go through cstor)."""
    if same_keys:
        return cstor.connect(moto_s3, "b")
    response = cstor.api.post(
        "/api/v1/connections",
        json={
            "name": "b",
            "endpoint": moto_s3.endpoint,
            "access_key": "other-keys-0002",
            "secret_key": "other-secret",
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.mark.parametrize("path", list(PATHS))
def test_a_sync_again_copies_nothing_whichever_path_made_the_copies(
    cstor: RunningCstor,
    moto_s3: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
    path: str,
) -> None:
    same_keys, size, copy_parts = PATHS[path]
    # Given two source objects of a size this path copies: one uploaded in 5 MiB parts
    # (moto keeps the multipart ETag, as AWS does), one with a single PUT (an MD5 ETag)
    source_bucket, dest_bucket = make_bucket(moto_s3), make_bucket(moto_s3)
    client = s3_client_for(moto_s3)
    body = bytes(range(256)) * (size // 256)
    in_parts_etag = put_in_parts(client, source_bucket, "in-parts", body)
    assert not is_md5_etag(in_parts_etag)
    client.put_object(Bucket=source_bucket, Key="one-put", Body=body[::-1])

    # When both are copied by this path, and the migration is synced again
    source = cstor.connect(moto_s3, "a")
    destination = destination_connection(cstor, moto_s3, same_keys=same_keys)
    first = cstor.wait_finished(cstor.migrate(source, source_bucket, destination, dest_bucket))
    assert (first["status"], first["objects_copied"]) == ("completed", 2), first
    copy = client.head_object(Bucket=dest_bucket, Key="in-parts")
    copy_etag = str(copy["ETag"]).strip('"')
    if copy_parts is not None:  # the copy's ETag shows the path taken
        assert copy_etag.endswith(f"-{copy_parts}") if copy_parts else is_md5_etag(copy_etag)
    response = cstor.api.post(f"/api/v1/migrations/{first['id']}/sync")
    assert response.status_code == 201, response.text
    second = cstor.wait_finished(response.json()["id"])

    # Then nothing is copied again: both are identical at the destination, the one from
    # parts by the source ETag stamped on its copy, next to the user's own metadata
    assert (second["objects_copied"], second["objects_skipped"]) == (0, 2), second
    if copy_etag != in_parts_etag:
        assert copy["Metadata"] == {"team": "storage", SOURCE_ETAG_METADATA: in_parts_etag}
    # and a single-part copy of an MD5 source, whose own ETag tells, carries no stamp
    if not copy_parts:
        assert client.head_object(Bucket=dest_bucket, Key="one-put")["Metadata"] == {}
