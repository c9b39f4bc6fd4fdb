"""A multipart copy made with other part sizes is still recognised as identical on sync."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from launcher.embedded import EmbeddedS3
from tests.stack import RunningCstor, s3_client_for

MiB = 1024 * 1024


pytestmark = pytest.mark.stack(transfer_multipart_threshold=8 * MiB, transfer_part_size=6 * MiB)


def test_sync_skips_a_multipart_copy_whose_etag_differs_only_by_part_size(
    cstor: RunningCstor, moto_s3: EmbeddedS3, make_bucket: Callable[[EmbeddedS3], str]
) -> None:
    # Given a 12 MiB source object uploaded in three 5 MiB-or-less parts (moto keeps the
    # multipart ETag, as AWS does)
    source_bucket, dest_bucket = make_bucket(moto_s3), make_bucket(moto_s3)
    client = s3_client_for(moto_s3)
    body = bytes(range(256)) * (12 * MiB // 256)
    upload = client.create_multipart_upload(Bucket=source_bucket, Key="big")["UploadId"]
    parts = []
    for number, start in enumerate(range(0, len(body), 5 * MiB), start=1):
        part = client.upload_part(
            Bucket=source_bucket,
            Key="big",
            UploadId=upload,
            PartNumber=number,
            Body=body[start : start + 5 * MiB],
        )
        parts.append({"PartNumber": number, "ETag": part["ETag"]})
    client.complete_multipart_upload(
        Bucket=source_bucket, Key="big", UploadId=upload, MultipartUpload={"Parts": parts}
    )
    source_etag = client.head_object(Bucket=source_bucket, Key="big")["ETag"]
    assert source_etag.endswith('-3"')

    # When it is streamed (other keys for the destination: no server-side copy) in 6 MiB
    # parts, and the migration is synced again
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
    first = cstor.wait_finished(
        cstor.migrate(
            cstor.connect(moto_s3, "a"), source_bucket, response.json()["id"], dest_bucket
        )
    )
    copy = client.head_object(Bucket=dest_bucket, Key="big")
    assert first["objects_copied"] == 1
    assert copy["ETag"].endswith('-2"')  # another part size, another ETag
    response = cstor.api.post(f"/api/v1/migrations/{first['id']}/sync")
    assert response.status_code == 201, response.text
    second = cstor.wait_finished(response.json()["id"])

    # Then the copy is recognised by the source ETag stamped on it, and not copied again
    assert copy["Metadata"]["cstor-source-etag"] == source_etag.strip('"')
    assert (second["objects_copied"], second["objects_skipped"]) == (0, 1)
