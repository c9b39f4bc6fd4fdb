"""Copy strategy for one store with the same keys on both sides, up to CopyObject's
limit: the store copies the object (metadata and tags go with it); no byte passes
through cstor."""

from __future__ import annotations

from cstor.domain.checksums import (
    is_md5_etag,
    md5_checksum,
    needs_source_etag,
    with_source_etag,
)
from cstor.s3 import metadata
from cstor.s3.copy_context import CopyContext, CopyOutcome, CopyRequest
from cstor.s3.errors import S3Error
from cstor.s3.options import CopyOptions
from cstor.s3.signed import copy_object
from cstor.s3.verify import checksum_of, object_at


class ServerCopy:
    """CopyObject, checked by the ETag (single-part sources) or the size."""

    def __init__(self, context: CopyContext) -> None:
        self.context = context

    async def copy(self, request: CopyRequest, options: CopyOptions) -> CopyOutcome:
        """CopyObject: metadata and tags go with it (the COPY directives).

        A multipart source's copy gets the store's own ETag, so, as with a streamed
        multipart copy, the source's ETag is stamped on it: its metadata is replaced
        by the source's own plus the stamp.
        """
        context, key, etag, size = self.context, request.key, request.etag, request.size
        replace = None
        if needs_source_etag(etag, in_parts=False):
            attributes, extras = await context.source_attributes(
                request.source_bucket, key, size, etag
            )
            stamped = with_source_etag(attributes, etag, in_parts=False)
            replace = metadata.replace_headers(stamped, extras)
        await options.pace(size)  # the store moves the bytes, but they count all the same
        try:
            written = await copy_object(
                context.wire(context.destination), request.source_bucket, key, request.bucket,
                request.target, etag, replace, options.storage_class,
            )  # fmt: skip
        except S3Error as error:
            if error.reason != "not-found":
                raise
            # The one key the copy reads is the source's; the store's answer is kept.
            source = object_at(context.at_source(request.source_bucket, key))
            raise S3Error("source-missing", f"{source} no longer exists: {error}") from error
        if is_md5_etag(etag):
            if written != etag:
                source = object_at(context.at_source(request.source_bucket, key))
                raise S3Error(
                    "source-changed",
                    f"{source} changed since it was planned "
                    f"(planned ETag {etag}, copied {written})",
                )
            return CopyOutcome(size=size, checksum=md5_checksum(etag))
        # A multipart source: the copy's ETag is the store's own, so check its size.
        await context.check_written_size(request.bucket, request.target, size)
        return CopyOutcome(size=size, checksum=checksum_of(written))
