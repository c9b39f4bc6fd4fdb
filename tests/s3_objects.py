"""What tests of the S3 adapter share: endpoints, planned objects, open uploads, journals."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import psycopg
from botocore.exceptions import ClientError

from cstor import s3
from cstor.domain.checksums import (
    composite_etag,
)
from launcher.embedded import EmbeddedS3

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def endpoint_of(server: EmbeddedS3, *, secret: str | None = None) -> s3.Endpoint:
    return s3.Endpoint(
        url=server.endpoint,
        access_key=server.access_key,
        secret_key=secret or server.secret_key,
    )


def planned(server: EmbeddedS3, bucket: str, key: str) -> s3.ListedObject:
    """The object as the planner would have listed it."""
    (page,) = s3.list_pages(endpoint_of(server), bucket, prefix=key)
    (listed,) = [obj for obj in page if obj.key == key]
    return listed


def open_uploads(client: S3Client, bucket: str) -> list[str]:
    """Multipart uploads still open in a bucket (rclone answers NoSuchUpload for none)."""
    try:
        uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "NoSuchUpload":
            return []
        raise
    return [upload.get("UploadId", "") for upload in uploads]


def journaled_parts(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        try:
            row = conn.execute("SELECT count(*) FROM transfer_upload_parts").fetchone()
        except psycopg.errors.UndefinedTable:
            return 0
    return int(row[0]) if row else 0


def other_keys(server: EmbeddedS3) -> s3.Endpoint:
    """The same moto server under other keys: not the same credentials, so GET -> PUT."""
    return s3.Endpoint(url=server.endpoint, access_key="OTHERACCESSKEY01", secret_key="other")


def parts_of(body: bytes, part: int) -> str:
    return composite_etag(
        [hashlib.md5(body[i : i + part]).digest() for i in range(0, len(body), part)]
    )


class MemoryJournal:
    """A journal kept in a dict: the transfer service keeps the same in Postgres."""

    def __init__(self) -> None:
        self.uploads: dict[str, s3.JournaledUpload] = {}
        self.parts_done: list[int] = []

    async def find(self, upload_key: str) -> s3.JournaledUpload | None:
        return self.uploads.get(upload_key)

    async def started(self, upload_key: str, upload: s3.JournaledUpload) -> None:
        self.uploads[upload_key] = upload

    async def part_done(self, upload_key: str, number: int, md5_hex: str) -> None:
        self.uploads[upload_key].parts[number] = md5_hex
        self.parts_done.append(number)

    async def forget(self, upload_key: str) -> None:
        self.uploads.pop(upload_key, None)
