"""Multipart uploads at the destination, and the journal that lets them outlive a crash.

Parts go up as plain HTTP PUTs to presigned URLs (urllib3, in threads): boto3
would hash every part with SHA-256 over http, and the store would hash it again
to check; the part's own MD5, compared with the ETag the store gives it, is the
check that matters. An upload created with an additional checksum (the store
echoed its ChecksumAlgorithm) also sends each part's, and completes with them.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

import msgspec
import urllib3
from botocore.exceptions import ClientError

from cstor.domain.checksums import new_digest, normalize_etag
from cstor.s3.checksums import REFUSALS, checksum_headers, header_name, mismatch
from cstor.s3.errors import BOTO_ERRORS, S3Error, Site, from_answer, from_boto, from_transport
from cstor.s3.network import COPY, Proxy, proxy_for, tls_context

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

log = logging.getLogger(__name__)


class JournaledUpload(msgspec.Struct, kw_only=True):
    """An open multipart upload as the journal keeps it: enough to resume or abort it."""

    bucket: str
    key: str
    upload_id: str
    part_size: int
    source_etag: str
    parts: dict[int, str] = {}  # part number -> MD5 hex of the bytes sent
    checksum_algorithm: str = ""  # the additional checksum the upload keeps, if any


class UploadJournal(Protocol):
    """Where open multipart uploads are recorded so that they survive a crash."""

    async def find(self, upload_key: str) -> JournaledUpload | None: ...

    async def started(self, upload_key: str, upload: JournaledUpload) -> None: ...

    async def part_done(self, upload_key: str, number: int, md5_hex: str) -> None: ...

    async def forget(self, upload_key: str) -> None: ...


def http_pool(connections: int, url: str) -> urllib3.PoolManager:
    """The HTTP connections to the store at `url` that part uploads and source streams
    go through; retries are the copier's to decide."""
    return pool_manager(
        proxy_for(url),
        maxsize=connections,
        retries=False,
        timeout=urllib3.Timeout(connect=COPY.connect_timeout, read=COPY.read_timeout),
        ssl_context=tls_context(),
    )


def pool_manager(proxy: Proxy | None, **options: Any) -> urllib3.PoolManager:
    """urllib3's connections, through `proxy` if there is one (CONNECT for https)."""
    if proxy is None:
        return urllib3.PoolManager(**options)
    headers = {"Proxy-Authorization": proxy.authorization} if proxy.authorization else None
    return urllib3.ProxyManager(proxy.url, proxy_headers=headers, **options)


@dataclass(frozen=True)
class Upload:
    """A multipart upload open at the destination; every method blocks (run it in a thread)."""

    client: S3Client
    http: urllib3.PoolManager
    where: str
    bucket: str
    key: str
    upload_id: str
    checksum_algorithm: str = ""
    """The additional checksum the store keeps for this upload's parts; "" for none."""
    part_checksums: dict[int, str] = field(default_factory=dict)
    """Part number -> the base64 checksum sent with it (with `checksum_algorithm`)."""

    @property
    def site(self) -> Site:
        """Where the upload's failures happen: the destination's bucket and key."""
        return Site(self.where, "destination", self.bucket, self.key)

    @classmethod
    def create(
        cls,
        client: S3Client,
        http: urllib3.PoolManager,
        where: str,
        bucket: str,
        key: str,
        arguments: dict[str, Any],
    ) -> Upload:
        """Start an upload; with a ChecksumAlgorithm among `arguments` if the store keeps it.

        A store that refuses the algorithm gets an upload without it; one that
        ignores it does not echo it, and its upload has `checksum_algorithm` "".
        """
        what = "starting an upload of"
        asked = arguments.get("ChecksumAlgorithm", "")
        try:
            try:
                response = client.create_multipart_upload(Bucket=bucket, Key=key, **arguments)
            except ClientError as error:
                if not asked or error.response.get("Error", {}).get("Code") not in REFUSALS:
                    raise
                dropped = ("ChecksumAlgorithm", "ChecksumType")
                plain = {k: v for k, v in arguments.items() if k not in dropped}
                response = client.create_multipart_upload(Bucket=bucket, Key=key, **plain)
        except BOTO_ERRORS as error:
            raise from_boto(error, Site(where, "destination", bucket, key), what) from error
        kept = asked if asked and response.get("ChecksumAlgorithm") == asked else ""
        return cls(client, http, where, bucket, key, response["UploadId"], kept)

    def put_part(self, number: int, pieces: list[memoryview], md5: str = "") -> str:
        """Upload one part given as pieces; its MD5 hex (`md5`, if already taken),
        checked against the store's ETag.

        With an additional checksum, the part's goes with it (taken from `part_checksums`
        when the source stream's pass already put it there): the store checks it.
        """
        md5, value = self._digests(number, pieces, md5)
        response = self._send_part(number, pieces, value)
        etag = normalize_etag(response.headers.get("ETag"))
        if etag != md5:
            raise S3Error(
                "checksum-mismatch",
                f"{self.site.store()} stored part {number} of {self.key!r} in bucket "
                f"{self.bucket!r} with ETag {etag or 'none'}, the bytes sent have MD5 {md5}",
                transient=True,
            )
        if value:
            echoed = response.headers.get(header_name(self.checksum_algorithm))
            if echoed and echoed != value:
                raise mismatch(self.key, f"part {number}", echoed, value)
            self.part_checksums[number] = value
        return md5

    def _digests(self, number: int, pieces: list[memoryview], md5: str) -> tuple[str, str]:
        """The part's MD5 hex and its additional checksum ("" for none), each taken
        in one pass over the pieces unless already known."""
        digest = None if md5 else hashlib.md5(usedforsecurity=False)
        value = self.part_checksums.get(number, "") if self.checksum_algorithm else ""
        fresh = self.checksum_algorithm and not value
        checksum = new_digest(self.checksum_algorithm) if fresh else None
        for piece in pieces:
            if digest is not None:
                digest.update(piece)
            if checksum is not None:
                checksum.update(piece)
        if checksum is not None:
            value = base64.b64encode(checksum.digest()).decode()
        return (digest.hexdigest() if digest is not None else md5), value

    def _send_part(
        self, number: int, pieces: list[memoryview], checksum: str
    ) -> urllib3.BaseHTTPResponse:
        """PUT the pieces to the part's presigned URL; the store's 200 answer, or S3Error."""
        what = f"uploading part {number} of"
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self.key,
            "UploadId": self.upload_id,
            "PartNumber": number,
        }
        headers: dict[str, str] = {}
        if checksum:
            # Signed with the URL: some stores refuse x-amz-* headers left unsigned.
            params["ChecksumAlgorithm"] = self.checksum_algorithm
            params[f"Checksum{self.checksum_algorithm}"] = checksum
            headers = checksum_headers(self.checksum_algorithm, checksum)
        url = self.client.generate_presigned_url("upload_part", Params=params, ExpiresIn=3600)
        length = sum(piece.nbytes for piece in pieces)
        try:
            # The pieces go out one after the other, never joined (any buffer goes,
            # whatever urllib3's hints say); the length keeps the body un-chunked.
            response = self.http.request(
                "PUT",
                url,
                body=cast("list[bytes]", pieces),
                headers={**headers, "Content-Length": str(length)},
            )
        except urllib3.exceptions.HTTPError as error:
            # Not the error's text: it may quote the presigned URL, good for an hour.
            raise from_transport(error, self.site, what) from error
        if response.status != 200:
            raise from_answer(response.status, response.data, self.site, what)
        return response

    def copy_part(
        self, number: int, source_bucket: str, source_key: str, first: int, last: int, etag: str
    ) -> str:
        """Copy bytes first..last of a source object on the same store as one part; its ETag."""
        try:
            response = self.client.upload_part_copy(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                PartNumber=number,
                CopySource={"Bucket": source_bucket, "Key": source_key},
                CopySourceRange=f"bytes={first}-{last}",
                CopySourceIfMatch=f'"{etag}"',
            )
        except BOTO_ERRORS as error:
            raise from_boto(error, self.site, f"copying part {number} of") from error
        return normalize_etag(response["CopyPartResult"].get("ETag"))

    def finished_parts(self) -> dict[int, tuple[str, int]] | None:
        """The parts the store holds: number -> (ETag, size); None if the upload is gone."""
        parts: dict[int, tuple[str, int]] = {}
        try:
            pages = self.client.get_paginator("list_parts").paginate(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id
            )
            for page in pages:
                for part in page.get("Parts", []):
                    parts[part["PartNumber"]] = (normalize_etag(part["ETag"]), part["Size"])
        except BOTO_ERRORS as error:
            failure = from_boto(error, self.site, "listing the parts of")
            if failure.reason == "not-found":
                return None
            raise failure from error
        return parts

    def complete(self, md5s: dict[int, str]) -> str:
        """Assemble the parts; returns the object's ETag without quotes."""
        parts: list[CompletedPartTypeDef] = [
            {"PartNumber": number, "ETag": f'"{md5s[number]}"'} for number in sorted(md5s)
        ]
        if self.checksum_algorithm:
            for part in parts:
                value = self.part_checksums[part["PartNumber"]]
                part[f"Checksum{self.checksum_algorithm}"] = value  # type: ignore[literal-required]
        try:
            response = self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BOTO_ERRORS as error:
            raise from_boto(error, self.site, "completing the upload of") from error
        return normalize_etag(response.get("ETag"))

    def abort(self) -> None:
        """Discard the upload and its parts; failures are only logged."""
        try:
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id
            )
        except BOTO_ERRORS as error:
            failure = from_boto(error, self.site, f"aborting upload {self.upload_id} of")
            log.warning("could not abort an upload of %r: %s", self.key, failure)


def abort_strays(client: S3Client, where: str, bucket: str, key: str) -> int:
    """Abort uploads left open for exactly `key` (by a crash before they were journaled)
    at the destination `where`."""
    site = Site(where, "destination", bucket, key)
    try:
        listing = client.list_multipart_uploads(Bucket=bucket, Prefix=key)
    except BOTO_ERRORS as error:
        # rclone answers NoSuchUpload when none is open.
        failure = from_boto(error, site, "listing the open uploads of")
        if failure.reason == "not-found":
            return 0
        raise failure from error
    aborted = 0
    for upload in listing.get("Uploads", []):
        if upload.get("Key") == key and upload.get("UploadId"):
            try:
                client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload["UploadId"])
            except BOTO_ERRORS as error:
                failure = from_boto(error, site, "aborting a stray upload of")
                log.warning("could not abort a stray upload of %r: %s", key, failure)
            aborted += 1
    return aborted
