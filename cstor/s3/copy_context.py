"""What every copy strategy shares: the two endpoints, their clients and pools, the
replica's memory budget and threads, and the source's reading and checking.

One `CopyContext` per copier (source, destination pair); the strategies
(`whole_copy`, `streamed_parts`, `server_copy`, `server_parts`) each take it, and
`ObjectCopier` chooses between them.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import msgspec
from obstore.store import S3Store

from cstor.domain.checksums import ObjectTooLarge, normalize_etag, part_size_for
from cstor.s3 import metadata, network, wire
from cstor.s3.checksums import AdditionalChecksums
from cstor.s3.control import Endpoint, client
from cstor.s3.errors import BOTO_ERRORS, S3Error, from_boto, gave_up
from cstor.s3.multipart import UploadJournal, http_pool
from cstor.s3.pacing import MemoryBudget, backoff
from cstor.s3.verify import changed, check_size

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from obstore.store import ClientConfig, S3Credential

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


def obstore_store(endpoint: Endpoint, bucket: str) -> S3Store:
    """An obstore client for one bucket, with the keys given and none from the environment."""
    # obstore also reads AWS_* variables from the environment; a credential provider
    # keeps a session token found there from being sent with these keys.
    credential: S3Credential = {
        "access_key_id": endpoint.access_key,
        "secret_access_key": endpoint.secret_key,
        "token": None,
        "expires_at": None,
    }
    reach = network.COPY
    proxy = network.proxy_for(endpoint.url)
    return S3Store(
        bucket,
        config={
            "endpoint": endpoint.url,
            "region": endpoint.region,
            "virtual_hosted_style_request": False,
            "request_payer": False,
            # No SHA-256 of every body, here and again at the store: each copy is
            # verified by the MD5 of its bytes against the ETag the store gives back.
            "unsigned_payload": True,
        },
        client_options={
            "allow_http": endpoint.url.startswith("http://"),
            "connect_timeout": timedelta(seconds=reach.connect_timeout),
            # A stream of a large part may take its time: the whole GET's bound.
            "timeout": timedelta(seconds=network.WIRE.read_timeout),
            **_trust_and_proxy(proxy),
        },
        retry_config={
            "max_retries": reach.attempts - 1,
            "retry_timeout": timedelta(minutes=1),
        },
        credential_provider=lambda: credential,
    )


def _trust_and_proxy(proxy: network.Proxy | None) -> ClientConfig:
    """obstore's part of `network`: AWS_CA_BUNDLE's certificates, and the proxy chosen
    (given explicitly, reqwest then reads no variable of its own)."""
    options: ClientConfig = {}
    bundle = os.environ.get("AWS_CA_BUNDLE")
    if bundle:
        options["root_certificate"] = Path(bundle).read_bytes()
    if proxy is not None:
        options["proxy_url"] = proxy.url_with_user
    return options


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
        self.checksums = AdditionalChecksums(destination, self.http)
        self._stores: dict[tuple[Endpoint, str], S3Store] = {}
        self._wires: dict[Endpoint, tuple[asyncio.AbstractEventLoop, wire.WireClient]] = {}
        self._keeps_tags: dict[str, bool] = {}
        self._probing: dict[str, anyio.Lock] = {}  # one tags probe per bucket at a time

    def boto(self, endpoint: Endpoint) -> S3Client:
        """The boto3 client of a copy's requests: it tries once, `control` retries."""
        return client(endpoint, reach=network.COPY)

    def wire(self, endpoint: Endpoint) -> wire.WireClient:
        """The endpoint's plain HTTP client for whole-object GETs and PUTs (one per loop)."""
        loop = asyncio.get_running_loop()
        found = self._wires.get(endpoint)
        if found is None or found[0] is not loop:
            found = self._wires[endpoint] = (loop, wire.WireClient(endpoint))
        return found[1]

    def store(self, bucket: str) -> S3Store:
        """The source's obstore client for `bucket`."""
        store = self._stores.get((self.source, bucket))
        if store is None:
            store = self._stores[(self.source, bucket)] = obstore_store(self.source, bucket)
        return store

    async def control(self, endpoint: Endpoint, what: str, call: Callable[..., T], *args: Any) -> T:
        """Run a blocking boto3 call in a thread, translating its failures; what is
        transient is tried again, up to `attempts` times (the clients try once), and
        then fails for good (`gave_up`: the object is not tried again for it)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._control_once(endpoint, what, call, *args)
            except S3Error as error:
                if not error.transient:
                    raise
                if attempt >= self.attempts:
                    raise gave_up(error, attempt) from error
                log.info("%s: %s; trying again", what, error)
            await asyncio.sleep(backoff(attempt))

    async def _control_once(
        self, endpoint: Endpoint, what: str, call: Callable[..., T], *args: Any
    ) -> T:
        try:
            return await anyio.to_thread.run_sync(partial(call, *args), limiter=self.threads)
        except BOTO_ERRORS as error:
            failure = from_boto(error, endpoint.url, what)
            if failure.reason == "source-changed" or (
                failure.reason == "not-found" and endpoint is self.source
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
            self.source, f"reading {key!r}", self._head, self.source, bucket, key, etag
        )
        found_etag, found_size = normalize_etag(head.get("ETag")), head.get("ContentLength", -1)
        if (etag and found_etag != etag) or found_size != size:
            raise changed(bucket, key, size, etag, found_size, found_etag)
        attributes, extras = metadata.head_attributes(head)
        if head.get("TagCount", 0):
            tags = await self.control(
                self.source, f"reading the tags of {key!r}", self._tags, bucket, key
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

    async def extras(self, bucket: str, key: str) -> metadata.Extras:
        """Tags and Expires, asked only of stores that keep tags (probed once per bucket)."""
        keeps = self._keeps_tags.get(bucket)
        if keeps is None:
            keeps = await self._probe_tags(bucket, key)
        if not keeps:
            return metadata.Extras()
        return await self.control(
            self.source, f"reading the tags of {key!r}",
            metadata.read_extras, self.boto(self.source), bucket, key,
        )  # fmt: skip

    async def _probe_tags(self, bucket: str, key: str) -> bool:
        # The copies that start together wait for one probe instead of each sending one.
        async with self._probing.setdefault(bucket, anyio.Lock()):
            keeps = self._keeps_tags.get(bucket)
            if keeps is not None:
                return keeps
            keeps = await anyio.to_thread.run_sync(
                metadata.supports_tagging, client(self.source, quick=True), bucket, key
            )
            if keeps is None:  # this object is gone, or the store did not answer
                return True
            self._keeps_tags[bucket] = keeps
            return keeps

    async def check_written_size(self, bucket: str, key: str, size: int) -> None:
        """Raise S3Error unless the destination holds `key` with `size` bytes."""
        head = await self.control(
            self.destination, f"reading {key!r}", self._head, self.destination, bucket, key, ""
        )
        check_size(key, head.get("ContentLength", -1), size)
