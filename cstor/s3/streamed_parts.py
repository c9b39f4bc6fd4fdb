"""Copy strategy for objects above the multipart threshold across stores: a multipart
upload whose parts are cut from one GET stream of the source (`source_stream`,
urllib3), hashed several at once (`cstor.s3.md5`) and sent in parallel (two per
100 MiB, at most `max_parts_in_flight` per object).

Each part holds its bytes in memory only while in flight, all copies of the replica
within the memory budget. Parts are recorded in a journal as they finish, so a copy
killed mid-way resumes from its finished parts; a paused copy keeps its upload.
"""

from __future__ import annotations

import logging

from cstor.domain.checksums import AdditionalChecksum, composite_checksum, composite_etag
from cstor.s3 import metadata
from cstor.s3.checksums import (
    FULL_OBJECT_ALGORITHMS,
    StreamChecksums,
    check_kept,
    composite_of,
    stored_checksum,
)
from cstor.s3.copy_context import CopyContext, CopyOutcome, CopyRequest
from cstor.s3.multipart import Upload
from cstor.s3.options import CopyOptions
from cstor.s3.part_stream import PartStream
from cstor.s3.source_stream import opened
from cstor.s3.uploads import Uploads, create_arguments
from cstor.s3.verify import check_etag

log = logging.getLogger(__name__)


class StreamedParts:
    """GET stream -> multipart upload, verified by the parts' MD5s (and checksums)."""

    def __init__(
        self, context: CopyContext, uploads: Uploads, *, min_part_size: int, max_in_flight: int
    ) -> None:
        self.context = context
        self.uploads = uploads
        self.min_part_size = min_part_size
        self.max_in_flight = max_in_flight

    async def copy(self, request: CopyRequest, options: CopyOptions) -> CopyOutcome:
        """Copy `request`'s object in parts, resuming a journaled upload of it."""
        context, key, target, size = self.context, request.key, request.target, request.size
        part_size = context.part_size(key, size, self.min_part_size)
        count = -(-size // part_size)
        attributes, extras = await context.source_attributes(
            request.source_bucket, key, size, request.etag
        )
        additional = extras.checksum
        arguments = self._arguments(request, attributes, extras, options)
        upload, md5s = await self.uploads.open(request, arguments, part_size, resume=True)
        if md5s:
            log.info("resuming %r: %d of %d parts already there", target, len(md5s), count)
        digests = self._stream_checksums(upload, additional, size, part_size)
        async with self.uploads.aborted_on_failure(
            upload, request.upload_key, keep_when_paused=True
        ):
            await self._stream(upload, request, part_size, md5s, digests, options)
            if digests is not None and additional is not None and not additional.composite:
                digests.check_whole(key, additional)
            expected = composite_etag([bytes.fromhex(md5s[n]) for n in range(1, count + 1)])
            written = await context.control(
                upload.site, "completing the upload of", upload.complete, md5s
            )
        check_etag(context.at_destination(request.bucket, target), written, expected)
        whole = additional.value if additional and not additional.composite else ""
        recorded = await self._check_kept_checksum(upload, request.bucket, target, count, whole)
        return CopyOutcome(size=size, checksum=recorded or composite_checksum(written))

    def _arguments(
        self,
        request: CopyRequest,
        attributes: dict[str, str],
        extras: metadata.Extras,
        options: CopyOptions,
    ) -> dict[str, object]:
        arguments = create_arguments(attributes, extras, request.etag, options)
        additional = extras.checksum
        if additional is not None and self.context.checksums.wanted(request.bucket):
            arguments["ChecksumAlgorithm"] = additional.algorithm
            if not additional.composite and additional.algorithm in FULL_OBJECT_ALGORITHMS:
                # The copy then keeps the source's own value, whatever the part sizes.
                arguments["ChecksumType"] = "FULL_OBJECT"
        return arguments

    async def _stream(
        self,
        upload: Upload,
        request: CopyRequest,
        part_size: int,
        md5s: dict[int, str],
        digests: StreamChecksums | None,
        options: CopyOptions,
    ) -> None:
        stream = PartStream(
            self.context, upload, request, part_size, md5s,
            max_in_flight=self.max_in_flight, options=options,
        )  # fmt: skip
        bucket, key, size, etag = request.source_bucket, request.key, request.size, request.etag
        async with opened(self.context, bucket, key, size, etag) as source:
            await stream.run(source, digests)

    @staticmethod
    def _stream_checksums(
        upload: Upload, source: AdditionalChecksum | None, size: int, part_size: int
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
        context = self.context
        stored = await context.control(
            context.at_destination(bucket, key), "reading the checksum of",
            stored_checksum, context.boto(context.destination), bucket, key,
        )  # fmt: skip
        expected = composite_of(algorithm, upload.part_checksums, count)
        kept = check_kept(key, algorithm, expected, whole, stored)
        context.checksums.learned(bucket, kept is not None)
        return kept.recorded() if kept else ""
