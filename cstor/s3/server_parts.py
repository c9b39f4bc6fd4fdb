"""Copy strategy for one store with the same keys on both sides, past CopyObject's
5 GiB: UploadPartCopy, parts in parallel, the bytes never leaving the store."""

from __future__ import annotations

from cstor.domain.checksums import composite_etag, is_md5_etag, parts_in_flight_for
from cstor.s3.copy_context import CopyContext, CopyOutcome, CopyRequest
from cstor.s3.multipart import Upload
from cstor.s3.options import CopyOptions
from cstor.s3.pacing import run_bounded
from cstor.s3.uploads import Uploads, create_arguments
from cstor.s3.verify import check_etag, checksum_of


class ServerParts:
    """A multipart upload whose parts the store copies from the source object."""

    def __init__(
        self, context: CopyContext, uploads: Uploads, *, part_size: int, max_in_flight: int
    ) -> None:
        self.context = context
        self.uploads = uploads
        self.part_size = part_size
        self.max_in_flight = max_in_flight

    async def copy(self, request: CopyRequest, options: CopyOptions) -> CopyOutcome:
        """UploadPartCopy, parts in parallel: the way past CopyObject's 5 GiB."""
        context, size = self.context, request.size
        part_size = context.part_size(request.key, size, self.part_size)
        count = -(-size // part_size)
        attributes, extras = await context.source_attributes(
            request.source_bucket, request.key, size, request.etag
        )
        arguments = create_arguments(attributes, extras, request.etag, options)
        # Parts copied on the server are cheap to copy again: an old upload is aborted.
        upload, _ = await self.uploads.open(request, arguments, part_size, resume=False)
        etags: dict[int, str] = {}
        async with self.uploads.aborted_on_failure(
            upload, request.upload_key, keep_when_paused=False
        ):
            await self._copy_parts(upload, request, part_size, count, etags, options)
            written = await context.control(
                upload.site, "completing the upload of", upload.complete, etags
            )
        if all(is_md5_etag(part) for part in etags.values()):
            expected = composite_etag([bytes.fromhex(etags[n]) for n in range(1, count + 1)])
            check_etag(context.at_destination(request.bucket, request.target), written, expected)
        await context.check_written_size(request.bucket, request.target, size)
        return CopyOutcome(size=size, checksum=checksum_of(written))

    async def _copy_parts(
        self,
        upload: Upload,
        request: CopyRequest,
        part_size: int,
        count: int,
        etags: dict[int, str],
        options: CopyOptions,
    ) -> None:
        """Copy parts 1..count into `etags` (number -> ETag), several at once."""
        context, size = self.context, request.size

        async def send(number: int) -> None:
            first = (number - 1) * part_size
            last = min(size, first + part_size) - 1
            await options.pace(last - first + 1)
            etags[number] = await context.control(
                upload.site, f"copying part {number} of",
                upload.copy_part, number, request.source_bucket, request.key, first, last,
                request.etag,
            )  # fmt: skip

        in_flight = parts_in_flight_for(size, self.max_in_flight)
        await run_bounded(send, list(range(1, count + 1)), in_flight)
