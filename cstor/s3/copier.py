"""ObjectCopier: one verified copy per call, by the strategy that fits the object.

- Same store and keys on both sides: the store copies (`server_copy`, CopyObject;
  `server_parts`, UploadPartCopy above `server_copy_threshold`); no byte passes
  through cstor.
- Otherwise, up to `multipart_threshold`: one GET, one PUT with Content-MD5
  (`whole_copy`).
- Larger: a multipart upload whose parts are cut from one GET stream of the source
  and sent in parallel (`streamed_parts`, `part_stream`), resumable from its journal.
- Every copy follows its migration's `CopyOptions`: the storage class of the copy,
  its bandwidth (paced before each object or part), and a pause or cancel, heeded
  between parts (paused, the upload and its parts are kept for the resume).

Each copy is verified by MD5 (ETags), or, for a source with an S3 additional
checksum and a destination that keeps them, by that checksum (see
`cstor.s3.checksums`: how either side is learned, and what is recorded).
What the strategies share (clients, memory, threads, the source's attributes) is
`copy_context`; the multipart bookkeeping both multipart ones use is `uploads`.
"""

from __future__ import annotations

from cstor.domain.checksums import GIB, MIB, normalize_etag
from cstor.s3 import network
from cstor.s3.control import Endpoint, client
from cstor.s3.copy_context import CopyContext, CopyOutcome, CopyRequest
from cstor.s3.multipart import UploadJournal
from cstor.s3.options import DEFAULT_OPTIONS, CopyOptions
from cstor.s3.server_copy import ServerCopy
from cstor.s3.server_parts import ServerParts
from cstor.s3.streamed_parts import StreamedParts
from cstor.s3.uploads import Uploads
from cstor.s3.whole_copy import WholeCopy

__all__ = ["CopyOutcome", "ObjectCopier"]


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
        self.server_copy_threshold = server_copy_threshold
        threads = max(8, min(64, memory_budget // min_part_size + 4))
        context = CopyContext(
            source, destination, memory_budget=memory_budget, threads=threads,
            attempts=attempts, journal=journal,
        )  # fmt: skip
        self._uploads = Uploads(context)
        self._whole = WholeCopy(context)
        self._in_parts = StreamedParts(
            context, self._uploads, min_part_size=min_part_size,
            max_in_flight=max_parts_in_flight,
        )  # fmt: skip
        self._on_server = ServerCopy(context)
        self._parts_on_server = ServerParts(
            context, self._uploads, part_size=copy_part_size, max_in_flight=max_parts_in_flight
        )

    def warm_up(self) -> None:
        """Make the boto3 clients now (blocking), not in the way of the first large copy."""
        client(self.source, quick=True)
        client(self.source, reach=network.COPY)
        client(self.destination, reach=network.COPY)

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
        request = CopyRequest(
            source_bucket=source_bucket,
            key=key,
            bucket=destination_bucket,
            target=destination_key,
            size=expected_size,
            etag=normalize_etag(expected_etag),
            upload_key=upload_key,
        )
        if self.server_side:
            if expected_size > self.server_copy_threshold:
                return await self._parts_on_server.copy(request, options)
            return await self._on_server.copy(request, options)
        if expected_size > self.multipart_threshold:
            return await self._in_parts.copy(request, options)
        return await self._whole.copy(request, options)

    async def discard(self, upload_key: str) -> bool:
        """Abort the upload the journal keeps under `upload_key` (a paused copy's, say,
        once its migration is cancelled); whether there was one."""
        return await self._uploads.discard(upload_key)
