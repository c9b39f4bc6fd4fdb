"""The one S3 adapter: connection checks, listings and verified object copies.

Control-plane calls (checks, listings, multipart bookkeeping) go through boto3
in a thread. Object bytes go through obstore (Rust, async), which measured
fastest for cross-endpoint copies (bench/datapath.py).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import boto3
import msgspec
import obstore
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from obstore.exceptions import (
    BaseError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionError,
    UnauthenticatedError,
)
from obstore.store import S3Store

from cstor.domain.checksums import (
    MIB,
    ObjectTooLarge,
    composite_checksum,
    composite_etag,
    is_md5_etag,
    md5_checksum,
    normalize_etag,
    part_size_for,
    parts_in_flight_for,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef
    from obstore import Attributes, BytesStream, GetOptions, GetResult
    from obstore.store import S3Credential

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    """Where an S3-compatible store answers, and the keys to sign with."""

    url: str
    region: str = "us-east-1"
    access_key: str
    secret_key: str = field(repr=False)


class S3Error(Exception):
    """An S3 call failed; `reason` is a short machine string, the message is for people."""

    def __init__(self, reason: str, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.transient = transient


class ListedObject(msgspec.Struct, frozen=True, kw_only=True):
    """One object of a listing; the ETag is without quotes."""

    key: str
    size: int
    etag: str
    last_modified: datetime


class CopyOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """A verified copy: its size and checksum (`md5:<hex>` or `md5-parts:<hex>-<n>`)."""

    size: int
    checksum: str


# Control plane (boto3) ------------------------------------------------------

_CREDENTIAL_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"}
_TRANSIENT_CODES = {
    "SlowDown",
    "RequestTimeout",
    "Throttling",
    "InternalError",
    "ServiceUnavailable",
}


@lru_cache(maxsize=64)
def _client(endpoint: Endpoint, *, quick: bool = False) -> S3Client:
    """A boto3 client for `endpoint`; `quick` ones give up within seconds."""
    config = Config(
        connect_timeout=3 if quick else 10,
        read_timeout=10 if quick else 120,
        retries={"max_attempts": 2 if quick else 5, "mode": "standard"},
        max_pool_connections=32,
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    try:
        return boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint.url,
            region_name=endpoint.region,
            aws_access_key_id=endpoint.access_key,
            aws_secret_access_key=endpoint.secret_key,
            config=config,
        )
    except ValueError as error:
        raise S3Error("invalid-endpoint", f"{endpoint.url!r} is not a valid URL") from error


def _boto_error(error: Exception, endpoint: Endpoint, what: str) -> S3Error:
    """Translate a botocore failure of `what` (e.g. "listing bucket 'b'") at `endpoint`."""
    where = endpoint.url
    if isinstance(error, EndpointConnectionError | ConnectTimeoutError):
        return S3Error("unreachable", f"{where} cannot be reached", transient=True)
    if isinstance(error, ReadTimeoutError | ConnectionClosedError):
        return S3Error("timeout", f"{where} stopped answering while {what}", transient=True)
    if not isinstance(error, ClientError):
        return S3Error("s3-error", f"{what} at {where} failed: {error}", transient=True)
    code = error.response.get("Error", {}).get("Code", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if code in _CREDENTIAL_CODES:
        return S3Error(
            "invalid-credentials", f"The access key or secret key was rejected by {where}"
        )
    if code == "NoSuchBucket":
        return S3Error("no-such-bucket", f"{what} at {where} failed: the bucket does not exist")
    if code in {"AccessDenied", "AllAccessDisabled"} or status == 403:
        return S3Error("access-denied", f"{what} at {where} was denied to these keys")
    if code in _TRANSIENT_CODES or status >= 500:
        return S3Error("server-error", f"{where} failed {what} ({code})", transient=True)
    return S3Error("s3-error", f"{what} at {where} failed: {code or status}")


async def check_access(endpoint: Endpoint, bucket: str | None = None) -> None:
    """Raise S3Error unless the keys work at `endpoint` (and can list `bucket`, if given).

    Without a bucket, keys that are accepted but may not list buckets pass:
    many stores hand out keys scoped to one bucket.
    """
    await anyio.to_thread.run_sync(_check_access, endpoint, bucket)


def _check_access(endpoint: Endpoint, bucket: str | None) -> None:
    client = _client(endpoint, quick=True)
    try:
        if bucket is None:
            client.list_buckets()
        else:
            # Not head_bucket: HEAD has no error body, so a bad secret looks like a denial.
            client.list_objects_v2(Bucket=bucket, MaxKeys=1)
    except (BotoCoreError, ClientError) as error:
        failure = _boto_error(error, endpoint, f"listing {bucket!r}" if bucket else "listing")
        if bucket is None and failure.reason == "access-denied":
            return
        raise failure from error


def list_pages(
    endpoint: Endpoint, bucket: str, prefix: str = "", start_after: str | None = None
) -> Iterator[list[ListedObject]]:
    """The objects under `prefix`, in key order, one page (at most 1,000) at a time."""
    client = _client(endpoint)
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket,
        Prefix=prefix,
        StartAfter=start_after or "",
        PaginationConfig={"PageSize": 1000},
    )
    try:
        for page in pages:
            listed = [
                ListedObject(
                    key=item["Key"],
                    size=item["Size"],
                    etag=normalize_etag(item.get("ETag")),
                    last_modified=item["LastModified"],
                )
                for item in page.get("Contents", [])
            ]
            if listed:
                yield listed
    except (BotoCoreError, ClientError) as error:
        raise _boto_error(error, endpoint, f"listing bucket {bucket!r}") from error


# Data path (obstore) --------------------------------------------------------

_CONTENT_HEADERS = {
    "Content-Type": "ContentType",
    "Content-Encoding": "ContentEncoding",
    "Content-Disposition": "ContentDisposition",
    "Content-Language": "ContentLanguage",
    "Cache-Control": "CacheControl",
}


def _store(endpoint: Endpoint, bucket: str) -> S3Store:
    # obstore also reads AWS_* variables from the environment; a credential provider
    # keeps a session token found there from being sent with these keys.
    credential: S3Credential = {
        "access_key_id": endpoint.access_key,
        "secret_access_key": endpoint.secret_key,
        "token": None,
        "expires_at": None,
    }
    return S3Store(
        bucket,
        config={
            "endpoint": endpoint.url,
            "region": endpoint.region,
            "virtual_hosted_style_request": False,
            "request_payer": False,
        },
        client_options={
            "allow_http": endpoint.url.startswith("http://"),
            "connect_timeout": timedelta(seconds=5),
            "timeout": timedelta(minutes=10),
        },
        retry_config={"max_retries": 3, "retry_timeout": timedelta(minutes=1)},
        credential_provider=lambda: credential,
    )


# obstore raises the builtin FileNotFoundError, not its NotFoundError, for a missing object.
_OBSTORE_ERRORS = (BaseError, FileNotFoundError)


def _obstore_error(error: Exception, endpoint: Endpoint, bucket: str, key: str) -> S3Error:
    """Translate an obstore failure on `bucket`/`key` at `endpoint`."""
    where, text = endpoint.url, str(error)
    if "SignatureDoesNotMatch" in text or "InvalidAccessKeyId" in text:
        return S3Error(
            "invalid-credentials", f"The access key or secret key was rejected by {where}"
        )
    if "NoSuchBucket" in text:
        return S3Error("no-such-bucket", f"The bucket {bucket!r} does not exist at {where}")
    if isinstance(error, NotFoundError | FileNotFoundError):
        return S3Error("source-missing", f"{key!r} no longer exists in {bucket!r} at {where}")
    if isinstance(error, PreconditionError):
        return S3Error("source-changed", f"{key!r} in {bucket!r} changed since it was planned")
    if isinstance(error, PermissionDeniedError | UnauthenticatedError):
        return S3Error("access-denied", f"Access to {key!r} in {bucket!r} at {where} was denied")
    if "error sending request" in text or "Connect" in text:
        return S3Error("unreachable", f"{where} cannot be reached", transient=True)
    summary = text.splitlines()[0][:300] if text else type(error).__name__
    return S3Error("s3-error", f"{key!r} in {bucket!r} at {where}: {summary}", transient=True)


def _content_attributes(attributes: Attributes) -> dict[str, str]:
    """The attributes a copy carries over: content headers and user metadata."""
    return {k: v for k, v in attributes.items() if k != "Storage-Class"}


def _multipart_headers(attributes: Mapping[str, str]) -> dict[str, Any]:
    """create_multipart_upload arguments carrying the same attributes."""
    headers: dict[str, Any] = {}
    metadata: dict[str, str] = {}
    for name, value in attributes.items():
        if name in _CONTENT_HEADERS:
            headers[_CONTENT_HEADERS[name]] = value
        else:
            metadata[name] = value
    if metadata:
        headers["Metadata"] = metadata
    return headers


_GIL_KEPT = 2047
"""hashlib releases the GIL for buffers longer than this."""


async def _md5(data: bytes | obstore.Bytes) -> bytes:
    """The MD5 digest of `data`, without stalling the event loop."""
    if len(data) >= MIB:
        # A thread: hashlib drops the GIL on large buffers, so the loop runs on meanwhile.
        return await anyio.to_thread.run_sync(
            lambda: hashlib.md5(data, usedforsecurity=False).digest()
        )
    # Small slices keep the GIL: dropping it per object, then waiting to get it back
    # from obstore's threads, cost ten times the hashing itself.
    digest = hashlib.md5(usedforsecurity=False)
    view = memoryview(data)
    for start in range(0, len(view), _GIL_KEPT):
        digest.update(view[start : start + _GIL_KEPT])
    return digest.digest()


async def _exact_parts(stream: BytesStream, part_size: int) -> AsyncIterator[bytes]:
    """Re-cut a byte stream into parts of exactly `part_size` (the last may be shorter)."""
    pieces: list[memoryview] = []
    held = 0
    async for chunk in stream:
        view = memoryview(chunk)
        while held + len(view) >= part_size:
            cut = part_size - held
            yield b"".join([*pieces, view[:cut]])
            pieces, held, view = [], 0, view[cut:]
        if view:
            pieces.append(view)
            held += len(view)
    if pieces:
        yield b"".join(pieces)


@dataclass(frozen=True)
class _Upload:
    """A multipart upload in progress at the destination."""

    client: S3Client
    bucket: str
    key: str
    upload_id: str

    def put_part(self, number: int, data: bytes) -> tuple[bytes, str]:
        """Upload one part (blocking); returns its MD5 and the ETag the store gave it."""
        digest = hashlib.md5(data, usedforsecurity=False).digest()
        response = self.client.upload_part(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            PartNumber=number,
            Body=data,
            ContentMD5=base64.b64encode(digest).decode(),
        )
        return digest, response["ETag"]

    def complete(self, parts: list[CompletedPartTypeDef]) -> str:
        """Assemble the parts (blocking); returns the object's ETag without quotes."""
        response = self.client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": parts},
        )
        return normalize_etag(response.get("ETag"))

    def abort(self) -> None:
        """Discard the upload and its parts (blocking); failures are only logged."""
        try:
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id
            )
        except (BotoCoreError, ClientError) as error:
            log.warning("could not abort upload %s of %r: %s", self.upload_id, self.key, error)


class _MemoryBudget:
    """Bounds the object bytes held in memory by the copies in flight."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._free = limit
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def hold(self, amount: int) -> AsyncIterator[None]:
        amount = min(amount, self.limit)
        async with self._changed:
            await self._changed.wait_for(lambda: self._free >= amount)
            self._free -= amount
        try:
            yield
        finally:
            self._free += amount
            with anyio.CancelScope(shield=True):
                async with self._changed:
                    self._changed.notify_all()


class ObjectCopier:
    """Copies objects from one endpoint to another, streaming, and verifies every copy.

    Objects above `multipart_threshold` bytes are uploaded in parts of known
    size, `max_parts_in_flight` at a time; at most `memory_budget` bytes of
    object data are held in memory across all copies in flight.
    """

    def __init__(
        self,
        source: Endpoint,
        destination: Endpoint,
        *,
        multipart_threshold: int = 64 * MIB,
        min_part_size: int = 8 * MIB,
        max_parts_in_flight: int = 8,
        memory_budget: int = 512 * MIB,
    ) -> None:
        self.source = source
        self.destination = destination
        self.multipart_threshold = multipart_threshold
        self.min_part_size = min_part_size
        self.max_parts_in_flight = max_parts_in_flight
        self._memory = _MemoryBudget(memory_budget)
        self._threads = anyio.CapacityLimiter(4 * max_parts_in_flight)
        self._stores: dict[tuple[Endpoint, str], S3Store] = {}

    def _store(self, endpoint: Endpoint, bucket: str) -> S3Store:
        store = self._stores.get((endpoint, bucket))
        if store is None:
            store = self._stores[(endpoint, bucket)] = _store(endpoint, bucket)
        return store

    async def copy(
        self,
        source_bucket: str,
        key: str,
        destination_bucket: str,
        destination_key: str,
        expected_size: int,
        expected_etag: str,
    ) -> CopyOutcome:
        """Copy one object if it still has the planned ETag and size; raise S3Error if not.

        The copy is verified: its size, and the destination's ETag against the
        MD5 (or composite part MD5s) of the bytes read.
        """
        multipart = expected_size > self.multipart_threshold
        part_size, in_flight = self._parts_for(key, expected_size) if multipart else (0, 0)
        async with self._memory.hold(part_size * (in_flight + 1) if multipart else expected_size):
            try:
                source = await self._open(source_bucket, key, expected_size, expected_etag)
                if multipart:
                    return await self._copy_in_parts(
                        source, destination_bucket, destination_key, part_size, in_flight
                    )
                return await self._copy_whole(source, destination_bucket, destination_key)
            except _OBSTORE_ERRORS as error:
                raise _obstore_error(error, self.source, source_bucket, key) from error

    def _parts_for(self, key: str, size: int) -> tuple[int, int]:
        """Part size, and parts in flight within the memory budget, for a multipart copy."""
        try:
            part_size = part_size_for(size, self.min_part_size)
        except ObjectTooLarge as error:
            raise S3Error("too-large", f"{key!r} is too large for S3: {error}") from error
        in_flight = parts_in_flight_for(size, self.max_parts_in_flight)
        return part_size, max(1, min(in_flight, self._memory.limit // part_size - 1))

    async def _open(self, bucket: str, key: str, size: int, etag: str) -> GetResult:
        """Start reading the source object, insisting it is the planned version."""
        options: GetOptions = {"if_match": f'"{normalize_etag(etag)}"'} if etag else {}
        result = await obstore.get_async(self._store(self.source, bucket), key, options=options)
        # Some stores (rclone serve s3) ignore If-Match, so check what came back too.
        found_etag, found_size = normalize_etag(result.meta["e_tag"]), result.meta["size"]
        if (etag and found_etag != normalize_etag(etag)) or found_size != size:
            raise S3Error(
                "source-changed",
                f"{key!r} in {bucket!r} changed since it was planned "
                f"(planned {size} bytes, ETag {etag!r}; found {found_size}, {found_etag!r})",
            )
        return result

    async def _copy_whole(self, source: GetResult, bucket: str, key: str) -> CopyOutcome:
        planned = normalize_etag(source.meta["e_tag"])
        data = await source.bytes_async()
        _check_size(key, len(data), source.meta["size"])
        md5 = (await _md5(data)).hex()
        if is_md5_etag(planned) and md5 != planned:
            raise S3Error(
                "checksum-mismatch",
                f"the bytes read for {key!r} have MD5 {md5}, the source's ETag is {planned}",
                transient=True,
            )
        store = self._store(self.destination, bucket)
        try:
            written = await obstore.put_async(
                store,
                key,
                data,
                attributes=_content_attributes(source.attributes),
                use_multipart=False,
            )
        except _OBSTORE_ERRORS as error:
            raise _obstore_error(error, self.destination, bucket, key) from error
        _check_etag(key, normalize_etag(written["e_tag"]), md5)
        return CopyOutcome(size=len(data), checksum=md5_checksum(md5))

    async def _copy_in_parts(
        self, source: GetResult, bucket: str, key: str, part_size: int, in_flight: int
    ) -> CopyOutcome:
        headers = _multipart_headers(_content_attributes(source.attributes))
        # The thread records the upload as soon as it exists, so a cancellation that
        # lands just after it was created still aborts it.
        started: list[_Upload] = []
        try:
            await self._control(
                f"starting an upload of {key!r}",
                self._start_upload,
                bucket,
                key,
                headers,
                started,
            )
            (upload,) = started
            parts = await self._upload_parts(upload, source.stream(MIB), part_size, in_flight)
            _check_size(key, sum(size for _, _, size in parts), source.meta["size"])
            expected = composite_etag([digest for digest, _, _ in parts])
            completed: list[CompletedPartTypeDef] = [
                {"PartNumber": number, "ETag": etag}
                for number, (_, etag, _) in enumerate(parts, start=1)
            ]
            etag = await self._control(
                f"completing the upload of {key!r}", upload.complete, completed
            )
        except BaseException:
            if started:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(started[0].abort)
            raise
        _check_etag(key, etag, expected)
        return CopyOutcome(size=source.meta["size"], checksum=composite_checksum(etag))

    def _start_upload(
        self, bucket: str, key: str, headers: dict[str, Any], started: list[_Upload]
    ) -> None:
        client = _client(self.destination)
        response = client.create_multipart_upload(Bucket=bucket, Key=key, **headers)
        started.append(_Upload(client, bucket, key, response["UploadId"]))

    async def _upload_parts(
        self, upload: _Upload, stream: BytesStream, part_size: int, in_flight: int
    ) -> list[tuple[bytes, str, int]]:
        """Upload the stream's parts, `in_flight` at a time: (MD5, ETag, size) of each."""
        done: dict[int, tuple[bytes, str, int]] = {}
        running: set[asyncio.Task[None]] = set()

        async def put(number: int, data: bytes) -> None:
            what = f"uploading part {number} of {upload.key!r}"
            digest, etag = await self._control(what, upload.put_part, number, data)
            done[number] = (digest, etag, len(data))

        try:
            number = 0
            async for data in _exact_parts(stream, part_size):
                while len(running) >= in_flight:
                    finished, running = await asyncio.wait(
                        running, return_when=asyncio.FIRST_COMPLETED
                    )
                    for task in finished:
                        task.result()
                number += 1
                running.add(asyncio.create_task(put(number, data)))
            while running:
                finished, running = await asyncio.wait(running, return_when=asyncio.FIRST_EXCEPTION)
                for task in finished:
                    task.result()
        finally:
            for task in running:
                task.cancel()
            if running:
                with anyio.CancelScope(shield=True):
                    await asyncio.wait(running)
        return [done[n] for n in sorted(done)]

    async def _control(self, what: str, call: Callable[..., T], *args: Any) -> T:
        """Run a blocking boto3 call on the destination in a thread, translating failures."""
        try:
            return await anyio.to_thread.run_sync(partial(call, *args), limiter=self._threads)
        except (BotoCoreError, ClientError) as error:
            raise _boto_error(error, self.destination, what) from error


def _check_size(key: str, read: int, expected: int) -> None:
    if read != expected:
        raise S3Error(
            "size-mismatch",
            f"{read} bytes were read for {key!r}, the source has {expected}",
            transient=True,
        )


def _check_etag(key: str, written: str, expected: str) -> None:
    if written != expected:
        raise S3Error(
            "checksum-mismatch",
            f"the destination stored {key!r} with ETag {written or 'none'}, "
            f"the bytes sent give {expected}",
            transient=True,
        )
