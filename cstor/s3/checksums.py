"""S3's additional checksums (CRC32, CRC32C, SHA-1, SHA-256) on a copy: read, sent, checked.

When the source object has one and the destination keeps them, the copy sends
it with the bytes (x-amz-checksum-<alg> on PutObject; ChecksumAlgorithm on
CreateMultipartUpload and a checksum with every part), so the destination
checks what it received; cstor checks the bytes it read against the source's
value; and the copy is recorded by it (`crc32c:<b64>`, `crc32c-parts:<b64>-<n>`).
Objects without one are copied and verified by MD5, as before.

How each side is learned, with no request more for objects that have none:

- The source's checksum comes from the request a copy makes anyway, asked with
  x-amz-checksum-mode: ENABLED: the HEAD of a multipart copy's source, the GET
  of a small object's (`whole_copy`).
- Whether the destination keeps them is learned from its own answers, once per
  bucket: a PutObject that echoes the x-amz-checksum-<alg> it was sent, or a
  CreateMultipartUpload that echoes the ChecksumAlgorithm. A store that stays
  silent or refuses the headers (400 or 501) is remembered as not keeping them,
  and its copies go the MD5 way; an upload whose algorithm was not echoed goes
  without, and the next one asks again, at no cost. (rclone serve s3 checks
  nothing and echoes nothing; it keeps the header of that first PutObject as if
  it were metadata.)
  What is learned lives in the copier: each replica learns it again.

A full-object CRC32 or CRC32C copied in parts is asked for as FULL_OBJECT, so
the copy keeps the source's own value whatever the part size; SHA-1 and SHA-256
can only be composites in a multipart upload. A multipart source's composite
says nothing of the whole object: its copy is checked part by part and by the
composite of the parts sent, not against the source's. CRC64NVME (S3's default
for objects uploaded without a checksum) is not computed here: such objects go
the MD5 way. A resumed upload keeps the algorithm it was created with (the
journal records it); parts already uploaded get their checksums from the bytes
as the source streams past them again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import anyio
import urllib3
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from cstor.domain.checksums import (
    MIB,
    AdditionalChecksum,
    BytesLike,
    composite_value,
    digest_value,
    new_digest,
    normalize_etag,
)
from cstor.s3 import metadata
from cstor.s3.control import Endpoint
from cstor.s3.errors import S3Error, Site, from_answer, from_transport
from cstor.s3.wire import object_path

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

REFUSALS = {"InvalidRequest", "InvalidArgument", "NotImplemented"}
"""Error codes a store that does not take x-amz-checksum-* headers answers them with."""


def header_name(algorithm: str) -> str:
    return f"x-amz-checksum-{algorithm.lower()}"


def checksum_headers(algorithm: str, value: str) -> dict[str, str]:
    """The headers that send a checksum; moto keeps it only with the SDK's algorithm header."""
    return {header_name(algorithm): value, "x-amz-sdk-checksum-algorithm": algorithm}


def mismatch(key: str, what: str, found: str, expected: str) -> S3Error:
    return S3Error(
        "checksum-mismatch",
        f"{what} of {key!r} has checksum {found or 'none'}, expected {expected}",
        transient=True,
    )


def digest_of(algorithm: str, pieces: list[memoryview] | list[BytesLike]) -> str:
    """The base64 checksum of the bytes in `pieces` (blocking; hashlib drops the GIL)."""
    digest = new_digest(algorithm)
    for piece in pieces:
        digest.update(piece)
    return digest_value(digest)


async def check_read(key: str, data: BytesLike, checksum: AdditionalChecksum) -> None:
    """Raise unless the bytes read for `key` have the source's full-object checksum."""
    if len(data) >= MIB:
        found = await anyio.to_thread.run_sync(digest_of, checksum.algorithm, [data])
    else:
        found = digest_of(checksum.algorithm, [data])
    if found != checksum.value:
        raise mismatch(key, "the bytes read", found, checksum.value)


class StreamChecksums:
    """The checksums of a source stream's bytes as they pass: each part's, and the whole's.

    Part checksums go into the upload's `part_checksums` (for parts skipped on a
    resume too, whose bytes still stream by); each chunk is hashed in a thread.
    """

    def __init__(
        self, algorithm: str, size: int, part_size: int, parts: dict[int, str] | None, whole: bool
    ) -> None:
        self.algorithm = algorithm
        self.size = size
        self.part_size = part_size
        self.parts = parts
        self._whole = new_digest(algorithm) if whole else None
        self._part = new_digest(algorithm)
        self._number, self._held = 1, 0

    async def passing(self, chunks: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async for chunk in chunks:
            await anyio.to_thread.run_sync(self._update, memoryview(chunk))
            yield chunk

    def _update(self, view: memoryview) -> None:
        if self._whole is not None:
            self._whole.update(view)
        while view and self.parts is not None:
            wanted = min(self.part_size, self.size - (self._number - 1) * self.part_size)
            take = min(len(view), wanted - self._held)
            if take <= 0:
                return  # more bytes than planned: the copy notices and fails
            self._part.update(view[:take])
            self._held, view = self._held + take, view[take:]
            if self._held == wanted:
                self.parts[self._number] = digest_value(self._part)
                self._part, self._number, self._held = (
                    new_digest(self.algorithm),
                    self._number + 1,
                    0,
                )

    def check_whole(self, key: str, checksum: AdditionalChecksum) -> None:
        """Raise unless the bytes that passed have the source's full-object checksum."""
        if self._whole is not None:
            found = digest_value(self._whole)
            if found != checksum.value:
                raise mismatch(key, "the bytes read", found, checksum.value)


def composite_of(algorithm: str, part_values: Mapping[int, str], count: int) -> str:
    """The composite checksum (`<b64>-<n>`) of parts 1..count with these values."""
    return composite_value(algorithm, [part_values[number] for number in range(1, count + 1)])


class AdditionalChecksums:
    """Sends additional checksums to one destination, remembering which buckets keep them."""

    def __init__(self, endpoint: Endpoint, http: urllib3.PoolManager) -> None:
        self.endpoint = endpoint
        self.http = http
        self._credentials = Credentials(endpoint.access_key, endpoint.secret_key)
        self._keeps: dict[str, bool] = {}

    def wanted(self, bucket: str) -> bool:
        """Whether copies to `bucket` should send their source's checksum: not once it
        showed that it does not keep them."""
        return self._keeps.get(bucket, True)

    def learned(self, bucket: str, keeps: bool) -> None:
        self._keeps[bucket] = keeps

    def put(
        self,
        bucket: str,
        key: str,
        data: BytesLike,
        attributes: Mapping[str, str],
        extras: metadata.Extras,
        checksum: AdditionalChecksum,
        storage_class: str | None = None,
    ) -> tuple[str, str]:
        """PutObject with the checksum (blocking): the ETag, and how the copy is recorded.

        The record is the checksum when the store echoed it, else "" (it did not check
        it: the copy is verified by MD5 alone, and the bucket is not sent one again).
        """
        headers = metadata.replace_headers(attributes, extras)
        if extras.tags:
            headers["x-amz-tagging"] = urlencode(extras.tags)
        if storage_class:
            headers["x-amz-storage-class"] = storage_class
        sent = {**headers, **checksum_headers(checksum.algorithm, checksum.value)}
        site, what = Site(self.endpoint.url, "destination", bucket, key), "writing"
        response = self._send(bucket, key, data, sent)
        if response.status != 200:
            code = _code(response.data)
            if code == "BadDigest":  # the store checked the checksum, and the bytes differ
                raise mismatch(key, "what the destination received", code, checksum.value)
            if response.status in (400, 501) and code in REFUSALS:
                self.learned(bucket, False)
                response = self._send(bucket, key, data, headers)
            if response.status != 200:
                raise from_answer(response.status, response.data, site, what)
            return normalize_etag(response.headers.get("ETag")), ""
        echoed = response.headers.get(header_name(checksum.algorithm))
        etag = normalize_etag(response.headers.get("ETag"))
        if not echoed:
            self.learned(bucket, False)
            return etag, ""
        if echoed != checksum.value:
            raise mismatch(key, "the destination's copy", echoed, checksum.value)
        self.learned(bucket, True)
        return etag, checksum.recorded()

    def _send(
        self, bucket: str, key: str, data: BytesLike, headers: Mapping[str, str]
    ) -> urllib3.BaseHTTPResponse:
        url = self.endpoint.url.rstrip("/") + object_path(bucket, key)
        request = AWSRequest(
            method="PUT",
            url=url,
            headers={**headers, "x-amz-content-sha256": "UNSIGNED-PAYLOAD"},
        )
        S3SigV4Auth(self._credentials, "s3", self.endpoint.region).add_auth(request)
        try:
            return self.http.request(
                "PUT",
                url,
                body=memoryview(data),
                headers={**dict(request.headers.items()), "Content-Length": str(len(data))},
            )
        except urllib3.exceptions.HTTPError as error:
            site = Site(self.endpoint.url, "destination", bucket, key)
            raise from_transport(error, site, "writing") from error


def stored_checksum(client: S3Client, bucket: str, key: str) -> AdditionalChecksum | None:
    """The additional checksum the destination keeps for an object (blocking)."""
    head = client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    return metadata.head_checksum(head)


FULL_OBJECT_ALGORITHMS = ("CRC32", "CRC32C")
"""Algorithms a multipart upload can keep as a full-object value, the same as one PUT's."""


def check_kept(
    key: str,
    algorithm: str,
    expected: str,
    whole: str,
    stored: AdditionalChecksum | None,
) -> AdditionalChecksum | None:
    """Compare what the destination kept of a multipart copy with what was sent.

    `expected` is the composite of the parts sent (`<b64>-<n>`); `whole` the
    full-object value of the bytes read, where the upload asked for one (else "").
    None if the destination kept no checksum of this algorithm (the copy is then
    verified by its ETag alone); raises if it kept another value.
    """
    if stored is None or stored.algorithm != algorithm:
        return None
    if whole and stored.value == whole and stored.parts <= 0:
        return AdditionalChecksum(algorithm=algorithm, value=whole)
    value, _, parts = expected.partition("-")
    # Some stores (moto) leave the number of parts off the value they hand back.
    if stored.value != value or stored.parts not in (-1, 0, int(parts)):
        raise mismatch(key, "the destination's copy", stored.value, whole or expected)
    return AdditionalChecksum(algorithm=algorithm, value=value, parts=int(parts))


def _code(body: bytes) -> str:
    start, end = body.find(b"<Code>"), body.find(b"</Code>")
    return body[start + 6 : end].decode(errors="replace") if 0 <= start < end else ""
