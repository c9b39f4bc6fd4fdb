"""What every copy strategy shares: the two endpoints, their clients and pools, the
replica's memory budget and threads, and the source's reading and checking.

One `CopyContext` per copier (source, destination pair); the strategies
(`whole_copy`, `streamed_parts`, `server_copy`, `server_parts`) each take it, and
`ObjectCopier` chooses between them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import msgspec

from cstor.domain.checksums import ObjectTooLarge, normalize_etag, part_size_for
from cstor.s3 import metadata, network, wire
from cstor.s3.checksums import AdditionalChecksums
from cstor.s3.control import Endpoint, client
from cstor.s3.errors import BOTO_ERRORS, S3Error, Site, from_boto, gave_up
from cstor.s3.multipart import UploadJournal, http_pool
from cstor.s3.pacing import MemoryBudget, backoff
from cstor.s3.verify import changed, check_size

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)
T = TypeVar("T")


class CopyOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """A verified copy: its size and checksum (`md5:<hex>`, `md5-parts:<hex>-<n>`,
    or an additional one: `crc32c:<b64>`, `sha256-parts:<b64>-<n>` ...)."""

    size: int
    checksum: str


class CopyRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One object to copy, as planned: where from, where to, its size and ETag."""

    source_bucket: str
    key: str
    bucket: str
    target: str
    size: int
    etag: str
    upload_key: str = ""
    """The copy's name in the upload journal (the object's id); "" for none."""


class CopyContext:
    """The endpoints of a copier and what its copies share (every method is async-safe)."""

    def __init__(
        self,
        source: Endpoint,
        destination: Endpoint,
        *,
        memory_budget: int,
        threads: int,
        attempts: int,
        journal: UploadJournal | None,
    ) -> None:
        self.source = source
        self.destination = destination
        self.attempts = max(1, attempts)
        self.journal = journal
        self.memory = MemoryBudget(memory_budget)
        self.threads = anyio.CapacityLimiter(threads)
        self.http = http_pool(threads, destination.url)
        """Part uploads to the destination."""
        self.source_http = http_pool(threads, source.url)
        """The GET streams of the sources of multipart copies (`source_stream`)."""
        self.checksums = AdditionalChecksums(destination, self.http)
        self._wires: dict[Endpoint, tuple[asyncio.AbstractEventLoop, wire.WireClient]] = {}

    def at_source(self, bucket: str, key: str) -> Site:
        """The source's `key` in `bucket`, as its failures name it."""
        return Site(self.source.url, "source", bucket, key)

    def at_destination(self, bucket: str, key: str) -> Site:
        """The destination's `key` in `bucket`, as its failures name it."""
        return Site(self.destination.url, "destination", bucket, key)

    def boto(self, endpoint: Endpoint) -> S3Client:
        """The boto3 client of a copy's requests: it tries once, `control` retries."""
        return client(endpoint, reach=network.COPY)

    def wire(self, endpoint: Endpoint) -> wire.WireClient:
        """The endpoint's plain HTTP client for whole-object GETs and PUTs (one per loop)."""
        loop = asyncio.get_running_loop()
        found = self._wires.get(endpoint)
        if found is None or found[0] is not loop:
            side = "source" if endpoint is self.source else "destination"
            found = self._wires[endpoint] = (loop, wire.WireClient(endpoint, side=side))
        return found[1]

    async def control(self, site: Site, what: str, call: Callable[..., T], *args: Any) -> T:
        """Run a blocking boto3 call about `site` (`at_source`, `at_destination`) in a
        thread, translating its failures; what is transient is tried again, up to
        `attempts` times (the clients try once), and then fails for good (`gave_up`:
        the object is not tried again for it)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._control_once(site, what, call, *args)
            except S3Error as error:
                if not error.transient:
                    raise
                if attempt >= self.attempts:
                    raise gave_up(error, attempt) from error
                log.info("%s: %s; trying again", site.doing(what), error)
            await asyncio.sleep(backoff(attempt))

    async def _control_once(self, site: Site, what: str, call: Callable[..., T], *args: Any) -> T:
        try:
            return await anyio.to_thread.run_sync(partial(call, *args), limiter=self.threads)
        except BOTO_ERRORS as error:
            failure = from_boto(error, site, what)
            if failure.reason == "source-changed" or (
                failure.reason == "not-found" and site.side == "source"
            ):
                failure = S3Error(
                    "source-missing" if failure.reason == "not-found" else failure.reason,
                    str(failure),
                )
            raise failure from error

    @staticmethod
    def part_size(key: str, size: int, minimum: int) -> int:
        """The part size for an object of `size`, at least `minimum`; S3Error if too large."""
        try:
            return part_size_for(size, minimum)
        except ObjectTooLarge as error:
            raise S3Error("too-large", f"{key!r} is too large for S3: {error}") from error

    async def source_attributes(
        self, bucket: str, key: str, size: int, etag: str
    ) -> tuple[dict[str, str], metadata.Extras]:
        """The source's headers, metadata, tags and Expires; checks it is as planned."""
        head = await self.control(
            self.at_source(bucket, key), "reading", self._head, self.source, bucket, key, etag
        )
        found_etag, found_size = normalize_etag(head.get("ETag")), head.get("ContentLength", -1)
        if (etag and found_etag != etag) or found_size != size:
            raise changed(self.at_source(bucket, key), size, etag, found_size, found_etag)
        attributes, extras = metadata.head_attributes(head)
        if head.get("TagCount", 0):
            tags = await self.control(
                self.at_source(bucket, key), "reading the tags of", self._tags, bucket, key
            )
            extras = msgspec.structs.replace(extras, tags=tags)
        return attributes, extras

    def _head(self, endpoint: Endpoint, bucket: str, key: str, etag: str) -> dict[str, Any]:
        arguments: dict[str, Any] = {"IfMatch": f'"{etag}"'} if etag else {}
        arguments["ChecksumMode"] = "ENABLED"  # the additional checksum, where there is one
        return dict(self.boto(endpoint).head_object(Bucket=bucket, Key=key, **arguments))

    def _tags(self, bucket: str, key: str) -> dict[str, str]:
        tag_set = self.boto(self.source).get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
        return {tag["Key"]: tag["Value"] for tag in tag_set}

    async def extras(self, bucket: str, key: str, headers: dict[str, str]) -> metadata.Extras:
        """Tags, Expires and the additional checksum of a whole object, from its GET's
        answer `headers`; the tags asked for only when it counts some."""
        extras = metadata.header_extras(headers)
        if not metadata.tag_count(headers):
            return extras
        tags = await self.control(
            self.at_source(bucket, key), "reading the tags of", self._tags, bucket, key
        )
        return msgspec.structs.replace(extras, tags=tags)

    async def check_written_size(self, bucket: str, key: str, size: int) -> None:
        """Raise S3Error unless the destination holds `key` with `size` bytes."""
        site = self.at_destination(bucket, key)
        head = await self.control(site, "reading", self._head, self.destination, bucket, key, "")
        check_size(site, head.get("ContentLength", -1), size, "are stored for")
