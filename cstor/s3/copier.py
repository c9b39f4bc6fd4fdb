"""ObjectCopier: one verified copy per call, by the strategy that fits the object.

- Same store and keys on both sides: the store copies (CopyObject; UploadPartCopy
  above `server_copy_threshold`); no byte passes through cstor.
- Otherwise, up to `multipart_threshold`: one GET, one PUT with Content-MD5
  (`wire`: plain HTTP/1.1 on the event loop, cheapest per object).
- Larger: a multipart upload whose parts are cut from one GET stream of the source,
  hashed several at once (`cstor.s3.md5`) and sent in parallel (two per 100 MiB,
  at most `max_parts_in_flight` per object), each
  holding its bytes in memory only while in flight, all copies of the replica
  within `memory_budget` bytes. Parts are recorded in a journal as they finish,
  so a copy killed mid-way resumes from its finished parts.
- Every copy follows its migration's `CopyOptions`: the storage class of the copy,
  its bandwidth (paced before each object or part), and a pause or cancel, heeded
  between parts (paused, the upload and its parts are kept for the resume).

Each copy is verified by MD5 (ETags), or, for a source with an S3 additional
checksum and a destination that keeps them, by that checksum (see
`cstor.s3.checksums`: how either side is learned, and what is recorded).
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import msgspec
import obstore
from obstore.store import S3Store

from cstor.domain.checksums import (
    GIB,
    MIB,
    SOURCE_ETAG_METADATA,
    AdditionalChecksum,
    ObjectTooLarge,
    composite_checksum,
    composite_etag,
    is_md5_etag,
    md5_checksum,
    normalize_etag,
    part_size_for,
    parts_in_flight_for,
)
from cstor.s3 import md5, metadata, wire
from cstor.s3.checksums import (
    FULL_OBJECT_ALGORITHMS,
    AdditionalChecksums,
    StreamChecksums,
    check_kept,
    check_read,
    composite_of,
    stored_checksum,
)
from cstor.s3.control import Endpoint, client
from cstor.s3.errors import BOTO_ERRORS, OBSTORE_ERRORS, S3Error, from_boto, from_obstore
from cstor.s3.multipart import JournaledUpload, Upload, UploadJournal, abort_strays, http_pool
from cstor.s3.options import DEFAULT_OPTIONS, CopyHalted, CopyOptions
from cstor.s3.pacing import MemoryBudget, backoff, run_bounded
from cstor.s3.redaction import store_name
from cstor.s3.signed import copy_object
from cstor.s3.verify import (
    changed,
    check_etag,
    check_found,
    check_planned,
    check_size,
    checksum_of,
    grown,
    md5_hex,
)

if TYPE_CHECKING:
    from obstore import GetOptions, GetResult
    from obstore.store import S3Credential

log = logging.getLogger(__name__)
T = TypeVar("T")


class CopyOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """A verified copy: its size and checksum (`md5:<hex>`, `md5-parts:<hex>-<n>`,
    or an additional one: `crc32c:<b64>`, `sha256-parts:<b64>-<n>` ...)."""

    size: int
    checksum: str


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
            # No SHA-256 of every body, here and again at the store: each copy is
            # verified by the MD5 of its bytes against the ETag the store gives back.
            "unsigned_payload": True,
        },
        client_options={
            "allow_http": endpoint.url.startswith("http://"),
            "connect_timeout": timedelta(seconds=5),
            "timeout": timedelta(minutes=10),
        },
        retry_config={"max_retries": 3, "retry_timeout": timedelta(minutes=1)},
        credential_provider=lambda: credential,
    )


_STREAM_CHUNK = 4 * MIB
"""The least a source stream hands over at once: fewer, larger pieces per part."""


class ObjectCopier:
    """Copies objects from one endpoint to another and verifies every copy."""

    def __init__(
        self,
        source: Endpoint,
        destination: Endpoint,
        *,
        multipart_threshold: int = 64 * MIB,
        min_part_size: int = 16 * MIB,
        max_parts_in_flight: int = 30,
        memory_budget: int = 512 * MIB,
        server_copy_threshold: int = 5 * GIB,
        copy_part_size: int = 512 * MIB,
        attempts: int = 3,
        journal: UploadJournal | None = None,
    ) -> None:
        self.source = source
        self.destination = destination
        self.server_side = source.same_store_and_keys(destination)
        self.multipart_threshold = multipart_threshold
        self.min_part_size = min_part_size
        self.max_parts_in_flight = max_parts_in_flight
        self.server_copy_threshold = server_copy_threshold
        self.copy_part_size = copy_part_size
        self.attempts = max(1, attempts)
        self.journal = journal
        self._memory = MemoryBudget(memory_budget)
        threads = max(8, min(64, memory_budget // min_part_size + 4))
        self._threads = anyio.CapacityLimiter(threads)
        self._http = http_pool(threads)
        self._checksums = AdditionalChecksums(destination, self._http)
        self._stores: dict[tuple[Endpoint, str], S3Store] = {}
        self._wires: dict[Endpoint, tuple[asyncio.AbstractEventLoop, wire.WireClient]] = {}
        self._keeps_tags: dict[str, bool] = {}
        self._probing: dict[str, anyio.Lock] = {}  # one tags probe per bucket at a time

    def warm_up(self) -> None:
        """Make the boto3 clients now (blocking), not in the way of the first large copy."""
        client(self.source, quick=True)
        client(self.source)
        client(self.destination)

    async def copy(
        self,
        source_bucket: str,
        key: str,
        destination_bucket: str,
        destination_key: str,
        expected_size: int,
        expected_etag: str,
        *,
        upload_key: str = "",
        options: CopyOptions = DEFAULT_OPTIONS,
    ) -> CopyOutcome:
        """Copy one object if it still has the planned ETag and size; raise S3Error if not.

        `upload_key` names the copy in the journal (the object's id), so that a
        multipart upload interrupted by a crash is resumed by the next attempt.
        `options` are its migration's: the copy's storage class, and the throttle that
        shares its bandwidth (drawn from before each object, part or server-side copy).
        Between parts, a paused or cancelled migration stops the copy (CopyHalted).
        """
        etag = normalize_etag(expected_etag)
        if self.server_side:
            if expected_size > self.server_copy_threshold:
                return await self._copy_parts_on_server(
                    source_bucket, key, destination_bucket, destination_key,
                    expected_size, etag, upload_key, options,
                )  # fmt: skip
            return await self._copy_on_server(
                source_bucket, key, destination_bucket, destination_key, expected_size, etag,
                options,
            )  # fmt: skip
        if expected_size > self.multipart_threshold:
            return await self._copy_in_parts(
                source_bucket, key, destination_bucket, destination_key,
                expected_size, etag, upload_key, options,
            )  # fmt: skip
        return await self._copy_whole(
            source_bucket, key, destination_bucket, destination_key, expected_size, etag, options
        )

    # GET -> PUT ------------------------------------------------------------------

    async def _copy_whole(
        self,
        source_bucket: str,
        key: str,
        bucket: str,
        target: str,
        size: int,
        etag: str,
        options: CopyOptions = DEFAULT_OPTIONS,
    ) -> CopyOutcome:
        await options.pace(size)
        async with self._memory.hold(size):
            condition = {"If-Match": f'"{etag}"'} if etag else {}
            source = await self._wire(self.source).get(source_bucket, key, condition)
            if source.status != 200:
                raise self._read_error(source, source_bucket, key)
            data = source.body
            found_etag = normalize_etag(source.headers.get("etag", ""))
            check_found(source_bucket, key, size, etag, len(data), found_etag)
            md5 = await md5_hex(data)
            if is_md5_etag(etag) and md5 != etag:
                raise S3Error(
                    "checksum-mismatch",
                    f"the bytes read for {key!r} have MD5 {md5}, the source's ETag is {etag}",
                    transient=True,
                )
            attributes = metadata.header_attributes(source.headers)
            extras = await self._extras(source_bucket, key)
            additional, recorded = extras.checksum, ""
            if additional is not None and not additional.composite:
                await check_read(key, memoryview(data), additional)
            if additional and not additional.composite and self._checksums.wanted(bucket):
                send = partial(
                    self._checksums.put, bucket, target, memoryview(data), attributes, extras,
                    additional, options.storage_class,
                )  # fmt: skip
                written, recorded = await anyio.to_thread.run_sync(send, limiter=self._threads)
            else:
                headers = metadata.put_headers(attributes, extras, source.headers)
                if options.storage_class:
                    headers["x-amz-storage-class"] = options.storage_class
                headers["Content-MD5"] = base64.b64encode(bytes.fromhex(md5)).decode()
                written_to = await self._wire(self.destination).put(bucket, target, headers, data)
                written = normalize_etag(written_to.headers.get("etag", ""))
        check_etag(target, written, md5)
        return CopyOutcome(size=size, checksum=recorded or md5_checksum(md5))

    def _read_error(self, response: wire.Response, bucket: str, key: str) -> S3Error:
        """What a GET's error answer means for the copy (412: the source changed)."""
        where = store_name(self.source.url)
        if response.status == 412:
            return S3Error("source-changed", f"{key!r} in {bucket!r} changed since it was planned")
        error = self._wire(self.source).error(response, f"copying {key!r} in {bucket!r}")
        if error.reason == "no-such-bucket":
            return S3Error("no-such-bucket", f"The bucket {bucket!r} does not exist at {where}")
        if response.status == 404:
            return S3Error("source-missing", f"{key!r} no longer exists in {bucket!r} at {where}")
        return error

    def _wire(self, endpoint: Endpoint) -> wire.WireClient:
        """The endpoint's plain HTTP client for whole-object GETs and PUTs (one per loop)."""
        loop = asyncio.get_running_loop()
        found = self._wires.get(endpoint)
        if found is None or found[0] is not loop:
            found = self._wires[endpoint] = (loop, wire.WireClient(endpoint))
        return found[1]

    async def _copy_in_parts(
        self,
        source_bucket: str,
        key: str,
        bucket: str,
        target: str,
        size: int,
        etag: str,
        upload_key: str,
        options: CopyOptions = DEFAULT_OPTIONS,
    ) -> CopyOutcome:
        part_size = self._part_size(key, size, self.min_part_size)
        count = -(-size // part_size)
        attributes, extras = await self._source_attributes(source_bucket, key, size, etag)
        arguments = metadata.create_arguments(attributes, extras)
        # Part sizes make multipart ETags incomparable: keep the source's with the copy.
        arguments.setdefault("Metadata", {})[SOURCE_ETAG_METADATA] = etag
        if options.storage_class:
            arguments["StorageClass"] = options.storage_class
        additional = extras.checksum
        if additional is not None and self._checksums.wanted(bucket):
            arguments["ChecksumAlgorithm"] = additional.algorithm
            if not additional.composite and additional.algorithm in FULL_OBJECT_ALGORITHMS:
                # The copy then keeps the source's own value, whatever the part sizes.
                arguments["ChecksumType"] = "FULL_OBJECT"
        upload, md5s = await self._open_upload(
            bucket, target, arguments, part_size, etag, upload_key, resume=True
        )
        if md5s:
            log.info("resuming %r: %d of %d parts already there", target, len(md5s), count)
        digests = self._stream_checksums(upload, additional, size, part_size)
        try:
            await self._stream_parts(
                upload, source_bucket, key, size, etag, part_size, md5s, upload_key, digests,
                options,
            )  # fmt: skip
            if digests is not None and additional is not None and not additional.composite:
                digests.check_whole(key, additional)
            expected = composite_etag([bytes.fromhex(md5s[n]) for n in range(1, count + 1)])
            written = await self._control(
                self.destination, f"completing {target!r}", upload.complete, md5s
            )
        except CopyHalted as halted:
            if not halted.paused:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(upload.abort)
                    await self._forget(upload_key)
            # Paused: the upload and its journaled parts stay for the copy after the resume.
            raise
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(upload.abort)
                await self._forget(upload_key)
            raise
        await self._forget(upload_key)
        check_etag(target, written, expected)
        whole = additional.value if additional and not additional.composite else ""
        recorded = await self._check_kept_checksum(upload, bucket, target, count, whole)
        return CopyOutcome(size=size, checksum=recorded or composite_checksum(written))

    def _stream_checksums(
        self, upload: Upload, source: AdditionalChecksum | None, size: int, part_size: int
    ) -> StreamChecksums | None:
        """What to hash as the source streams by: parts for the upload, the whole object
        to check against the source's full-object checksum; None if neither."""
        whole = source is not None and not source.composite
        algorithm = upload.checksum_algorithm or (source.algorithm if whole and source else "")
        if not algorithm:
            return None
        parts = upload.part_checksums if upload.checksum_algorithm else None
        return StreamChecksums(algorithm, size, part_size, parts, whole)

    async def _check_kept_checksum(
        self, upload: Upload, bucket: str, key: str, count: int, whole: str
    ) -> str:
        """The record of a multipart copy by the checksum the destination keeps, once
        checked against the parts sent (or `whole`, the full-object value of the bytes
        read); "" where the destination keeps none."""
        algorithm = upload.checksum_algorithm
        if not algorithm:
            return ""
        stored = await self._control(
            self.destination, f"reading {key!r}",
            stored_checksum, client(self.destination), bucket, key,
        )  # fmt: skip
        expected = composite_of(algorithm, upload.part_checksums, count)
        kept = check_kept(key, algorithm, expected, whole, stored)
        self._checksums.learned(bucket, kept is not None)
        return kept.recorded() if kept else ""

    async def _stream_parts(
        self,
        upload: Upload,
        bucket: str,
        key: str,
        size: int,
        etag: str,
        part_size: int,
        md5s: dict[int, str],
        upload_key: str,
        digests: StreamChecksums | None = None,
        options: CopyOptions = DEFAULT_OPTIONS,
    ) -> None:
        """Cut one GET stream of the source into parts and upload those not in `md5s`.

        Each part holds its bytes (as the stream's own buffers, never joined) from
        its first byte until the store has it; parts already uploaded are skipped.
        Parts read are hashed in groups, side by side (`cstor.s3.md5`): a group goes
        once it has half the parts in flight, or before the copy would wait for
        anything but its own parts in flight (memory; the end; a pause).
        `digests` sees every byte first (parts skipped too). Each part to send waits
        for its bytes' share of the migration's bandwidth (`options.pace`) first, and
        none starts once the migration is paused or cancelled (CopyHalted, raised when
        the parts read and in flight are done).
        """
        in_flight = parts_in_flight_for(size, self.max_parts_in_flight)
        # A throttled copy waits for its bandwidth anyway: its parts go as they are read.
        grouped = md5.side_by_side() and options.throttle is None
        group_size = max(1, min(md5.LANES, in_flight // 2)) if grouped else 1
        running: set[asyncio.Task[None]] = set()
        read: list[tuple[int, list[memoryview], int]] = []
        """Parts read and not yet sent: number, pieces, memory reserved."""
        hashing: set[asyncio.Future[list[str]]] = set()

        async def put(
            number: int, pieces: list[memoryview], amount: int, hashed: asyncio.Future[list[str]],
            index: int,
        ) -> None:  # fmt: skip
            try:
                md5_hex = await self._put_part(
                    upload, number, pieces, (await asyncio.shield(hashed))[index]
                )
            finally:
                with anyio.CancelScope(shield=True):
                    await self._memory.release(amount)
            md5s[number] = md5_hex
            if self.journal and upload_key:
                await self.journal.part_done(upload_key, number, md5_hex)

        def send_read() -> None:
            """Hash the parts read, side by side, and upload each once its MD5 is known."""
            nonlocal read
            if not read:
                return
            group, read = read, []
            parts = [pieces for _, pieces, _ in group]
            hashed = asyncio.create_task(
                anyio.to_thread.run_sync(md5.md5s_of, parts, limiter=self._threads)
            )
            hashing.add(hashed)
            hashed.add_done_callback(hashing.discard)
            for index, (number, pieces, amount) in enumerate(group):
                running.add(asyncio.create_task(put(number, pieces, amount, hashed, index)))

        async def settle(limit: int) -> None:
            """Until at most `limit` parts are read or in flight."""
            nonlocal running
            while len(running) + len(read) > limit:
                if not running:
                    send_read()
                    continue
                done, running = await asyncio.wait(running, return_when=asyncio.FIRST_EXCEPTION)
                for task in done:
                    task.result()

        reserved = 0
        try:
            source = await self._open(bucket, key, size, etag)
            number, pieces, held = 1, list[memoryview](), 0
            chunks = source.stream(_STREAM_CHUNK)
            async for chunk in digests.passing(chunks) if digests else chunks:
                view = memoryview(chunk)
                while view:
                    wanted = min(part_size, size - (number - 1) * part_size)
                    if wanted <= 0:
                        raise grown(key, size)
                    if not reserved and number not in md5s:
                        await settle(in_flight - 1)
                        try:
                            await options.pace(wanted)  # CopyHalted if paused or cancelled
                        except CopyHalted:
                            send_read()
                            await settle(0)  # parts read and in flight finish, journaled
                            raise
                        if self._memory.would_wait(wanted):
                            send_read()  # what it holds may be what others wait for
                        reserved = await self._memory.acquire(wanted)
                    take = min(len(view), wanted - held)
                    if number not in md5s:
                        pieces.append(view[:take])
                    held, view = held + take, view[take:]
                    if held == wanted:
                        if number not in md5s:
                            read.append((number, pieces, reserved))
                            if len(read) >= group_size:
                                send_read()
                        number, pieces, held, reserved = number + 1, [], 0, 0
            if (number - 1) * part_size < size:
                check_size(key, min(size, (number - 1) * part_size + held), size)
            send_read()
            await settle(0)
        except OBSTORE_ERRORS as error:
            raise from_obstore(error, self.source.url, bucket, key) from error
        finally:
            unsent = reserved + sum(amount for _, _, amount in read)
            if unsent:
                with anyio.CancelScope(shield=True):
                    await self._memory.release(unsent)
            for task in running:
                task.cancel()
            if running or hashing:
                with anyio.CancelScope(shield=True):
                    await asyncio.wait(running | hashing)

    async def _open(self, bucket: str, key: str, size: int, etag: str) -> GetResult:
        """Start reading the source object, insisting it is the planned version."""
        options: GetOptions = {"if_match": f'"{etag}"'} if etag else {}
        result = await obstore.get_async(self._store(self.source, bucket), key, options=options)
        check_planned(bucket, key, result, size, etag)
        return result

    async def _put_part(
        self, upload: Upload, number: int, pieces: list[memoryview], md5_hex: str = ""
    ) -> str:
        """Upload one part, trying again what is transient; its MD5 hex (`md5_hex`, if
        already taken)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await anyio.to_thread.run_sync(
                    upload.put_part, number, pieces, md5_hex, limiter=self._threads
                )
            except S3Error as error:
                if not error.transient or attempt >= self.attempts:
                    raise
                log.info("part %d of %r: %s; trying again", number, upload.key, error)
            await asyncio.sleep(backoff(attempt))

    async def _source_attributes(
        self, bucket: str, key: str, size: int, etag: str
    ) -> tuple[dict[str, str], metadata.Extras]:
        """The source's headers, metadata, tags and Expires; checks it is as planned."""
        head = await self._control(
            self.source, f"reading {key!r}", self._head, self.source, bucket, key, etag
        )
        found_etag, found_size = normalize_etag(head.get("ETag")), head.get("ContentLength", -1)
        if (etag and found_etag != etag) or found_size != size:
            raise changed(bucket, key, size, etag, found_size, found_etag)
        attributes, extras = metadata.head_attributes(head)
        if head.get("TagCount", 0):
            tags = await self._control(
                self.source, f"reading the tags of {key!r}", self._tags, bucket, key
            )
            extras = msgspec.structs.replace(extras, tags=tags)
        return attributes, extras

    @staticmethod
    def _head(endpoint: Endpoint, bucket: str, key: str, etag: str) -> dict[str, Any]:
        arguments: dict[str, Any] = {"IfMatch": f'"{etag}"'} if etag else {}
        arguments["ChecksumMode"] = "ENABLED"  # the additional checksum, where there is one
        return dict(client(endpoint).head_object(Bucket=bucket, Key=key, **arguments))

    def _tags(self, bucket: str, key: str) -> dict[str, str]:
        tag_set = client(self.source).get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
        return {tag["Key"]: tag["Value"] for tag in tag_set}

    async def _extras(self, bucket: str, key: str) -> metadata.Extras:
        """Tags and Expires, asked only of stores that keep tags (probed once per bucket)."""
        keeps = self._keeps_tags.get(bucket)
        if keeps is None:
            # The copies that start together wait for one probe instead of each sending one.
            async with self._probing.setdefault(bucket, anyio.Lock()):
                keeps = self._keeps_tags.get(bucket)
                if keeps is None:
                    keeps = await anyio.to_thread.run_sync(
                        metadata.supports_tagging, client(self.source, quick=True), bucket, key
                    )
                    if keeps is None:  # this object is gone, or the store did not answer
                        keeps = True
                    else:
                        self._keeps_tags[bucket] = keeps
        if not keeps:
            return metadata.Extras()
        return await self._control(
            self.source, f"reading the tags of {key!r}",
            metadata.read_extras, client(self.source), bucket, key,
        )  # fmt: skip

    # Multipart bookkeeping ---------------------------------------------------------

    async def _open_upload(
        self,
        bucket: str,
        key: str,
        arguments: dict[str, Any],
        part_size: int,
        etag: str,
        upload_key: str,
        *,
        resume: bool,
    ) -> tuple[Upload, dict[int, str]]:
        """The upload to send parts to, and the parts it already holds (by their MD5 hex)."""
        destination = client(self.destination)
        where = self.destination.url
        journaled = await self.journal.find(upload_key) if self.journal and upload_key else None
        if journaled is not None:
            upload = Upload(
                destination, self._http, where, bucket, key, journaled.upload_id,
                journaled.checksum_algorithm,
            )  # fmt: skip
            same = (journaled.bucket, journaled.key, journaled.part_size, journaled.source_etag)
            held = None
            if resume and same == (bucket, key, part_size, etag):
                held = await self._control(
                    self.destination, f"listing the parts of {key!r}", upload.finished_parts
                )
            if held is not None:
                # A part counts when the store holds it with the MD5 the journal recorded.
                finished = {
                    n: md5 for n, md5 in journaled.parts.items() if held.get(n, ("",))[0] == md5
                }
                return upload, finished
            await anyio.to_thread.run_sync(upload.abort)
            await self._forget(upload_key)
        elif self.journal and upload_key:
            # Uploads a crash left open before they were journaled.
            await self._control(
                self.destination, f"listing the uploads of {key!r}",
                abort_strays, destination, where, bucket, key,
            )  # fmt: skip
        started: list[Upload] = []

        def create() -> None:
            # Kept as soon as it exists, so a cancellation right after still aborts it.
            started.append(Upload.create(destination, self._http, where, bucket, key, arguments))

        try:
            await anyio.to_thread.run_sync(create, limiter=self._threads)
            (upload,) = started
            if self.journal and upload_key:
                record = JournaledUpload(
                    bucket=bucket,
                    key=key,
                    upload_id=upload.upload_id,
                    part_size=part_size,
                    source_etag=etag,
                    checksum_algorithm=upload.checksum_algorithm,
                )
                await self.journal.started(upload_key, record)
        except BaseException:
            if started:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(started[0].abort)
            raise
        return upload, {}

    async def _forget(self, upload_key: str) -> None:
        if self.journal and upload_key:
            await self.journal.forget(upload_key)

    async def discard(self, upload_key: str) -> bool:
        """Abort the upload the journal keeps under `upload_key` (a paused copy's, say,
        once its migration is cancelled); whether there was one."""
        journaled = await self.journal.find(upload_key) if self.journal and upload_key else None
        if journaled is None:
            return False
        upload = Upload(
            client(self.destination), self._http, self.destination.url,
            journaled.bucket, journaled.key, journaled.upload_id,
        )  # fmt: skip
        await anyio.to_thread.run_sync(upload.abort, limiter=self._threads)
        await self._forget(upload_key)
        return True

    # Server-side copies -----------------------------------------------------------

    async def _copy_on_server(
        self,
        source_bucket: str,
        key: str,
        bucket: str,
        target: str,
        size: int,
        etag: str,
        options: CopyOptions = DEFAULT_OPTIONS,
    ) -> CopyOutcome:
        """CopyObject: metadata and tags go with it (the COPY directives).

        A multipart source's copy gets the store's own ETag, so, as with a streamed
        multipart copy, the source's ETag is stamped on it: its metadata is replaced
        by the source's own plus the stamp.
        """
        replace = None
        if etag and not is_md5_etag(etag):
            attributes, extras = await self._source_attributes(source_bucket, key, size, etag)
            replace = metadata.replace_headers({**attributes, SOURCE_ETAG_METADATA: etag}, extras)
        await options.pace(size)  # the store moves the bytes, but they count all the same
        try:
            written = await copy_object(
                self._wire(self.destination), source_bucket, key, bucket, target, etag, replace,
                options.storage_class,
            )  # fmt: skip
        except S3Error as error:
            if error.reason != "not-found":
                raise
            # The one key the copy reads is the source's.
            raise S3Error(
                "source-missing", f"{key!r} no longer exists in {source_bucket!r}"
            ) from error
        if is_md5_etag(etag):
            if written != etag:
                raise S3Error(
                    "source-changed",
                    f"{key!r} in {source_bucket!r} changed since it was planned "
                    f"(planned ETag {etag}, copied {written})",
                )
            return CopyOutcome(size=size, checksum=md5_checksum(etag))
        # A multipart source: the copy's ETag is the store's own, so check its size.
        await self._check_written_size(bucket, target, size)
        return CopyOutcome(size=size, checksum=checksum_of(written))

    async def _copy_parts_on_server(
        self,
        source_bucket: str,
        key: str,
        bucket: str,
        target: str,
        size: int,
        etag: str,
        upload_key: str,
        options: CopyOptions = DEFAULT_OPTIONS,
    ) -> CopyOutcome:
        """UploadPartCopy, parts in parallel: the way past CopyObject's 5 GiB."""
        part_size = self._part_size(key, size, self.copy_part_size)
        count = -(-size // part_size)
        attributes, extras = await self._source_attributes(source_bucket, key, size, etag)
        arguments = metadata.create_arguments(attributes, extras)
        # Part sizes make multipart ETags incomparable: keep the source's with the copy.
        arguments.setdefault("Metadata", {})[SOURCE_ETAG_METADATA] = etag
        if options.storage_class:
            arguments["StorageClass"] = options.storage_class
        # Parts copied on the server are cheap to copy again: an old upload is aborted.
        upload, _ = await self._open_upload(
            bucket, target, arguments, part_size, etag, upload_key, resume=False
        )
        etags: dict[int, str] = {}
        try:

            async def send(number: int) -> None:
                first = (number - 1) * part_size
                last = min(size, first + part_size) - 1
                await options.pace(last - first + 1)
                etags[number] = await self._control(
                    self.destination, f"copying part {number} of {key!r}",
                    upload.copy_part, number, source_bucket, key, first, last, etag,
                )  # fmt: skip

            in_flight = parts_in_flight_for(size, self.max_parts_in_flight)
            await run_bounded(send, list(range(1, count + 1)), in_flight)
            written = await self._control(
                self.destination, f"completing {target!r}", upload.complete, etags
            )
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(upload.abort)
                await self._forget(upload_key)
            raise
        await self._forget(upload_key)
        if all(is_md5_etag(part) for part in etags.values()):
            expected = composite_etag([bytes.fromhex(etags[n]) for n in range(1, count + 1)])
            check_etag(target, written, expected)
        await self._check_written_size(bucket, target, size)
        return CopyOutcome(size=size, checksum=checksum_of(written))

    async def _check_written_size(self, bucket: str, key: str, size: int) -> None:
        head = await self._control(
            self.destination, f"reading {key!r}", self._head, self.destination, bucket, key, ""
        )
        check_size(key, head.get("ContentLength", -1), size)

    # Plumbing --------------------------------------------------------------------

    def _store(self, endpoint: Endpoint, bucket: str) -> S3Store:
        store = self._stores.get((endpoint, bucket))
        if store is None:
            store = self._stores[(endpoint, bucket)] = _store(endpoint, bucket)
        return store

    @staticmethod
    def _part_size(key: str, size: int, minimum: int) -> int:
        try:
            return part_size_for(size, minimum)
        except ObjectTooLarge as error:
            raise S3Error("too-large", f"{key!r} is too large for S3: {error}") from error

    async def _control(
        self, endpoint: Endpoint, what: str, call: Callable[..., T], *args: Any
    ) -> T:
        """Run a blocking boto3 call in a thread, translating its failures."""
        try:
            return await anyio.to_thread.run_sync(partial(call, *args), limiter=self._threads)
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
