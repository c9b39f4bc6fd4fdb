"""Copy strategy for objects up to the multipart threshold across stores: one GET,
one PUT with Content-MD5 (`wire`: plain HTTP/1.1 on the event loop, cheapest per
object), the bytes held in memory within the replica's budget."""

from __future__ import annotations

import base64
from functools import partial

import anyio

from cstor.domain.checksums import is_md5_etag, md5_checksum, normalize_etag, with_source_etag
from cstor.s3 import metadata
from cstor.s3.checksums import check_read
from cstor.s3.copy_context import CopyContext, CopyOutcome, CopyRequest
from cstor.s3.errors import S3Error
from cstor.s3.options import CopyOptions
from cstor.s3.verify import check_etag, check_found, md5_hex, object_at, read_refused


class WholeCopy:
    """GET -> PUT of one object, verified by the MD5 of the bytes read."""

    def __init__(self, context: CopyContext) -> None:
        self.context = context

    async def copy(self, request: CopyRequest, options: CopyOptions) -> CopyOutcome:
        """Copy `request`'s object whole; S3Error if it changed or a store refused."""
        context, size, etag = self.context, request.size, request.etag
        await options.pace(size)
        async with context.memory.hold(size):
            data, headers = await self._read(request)
            md5 = await md5_hex(data)
            if is_md5_etag(etag) and md5 != etag:
                source = object_at(context.at_source(request.source_bucket, request.key))
                raise S3Error(
                    "checksum-mismatch",
                    f"the bytes read for {source} have MD5 {md5}, the source's ETag is {etag}",
                    transient=True,
                )
            written, recorded = await self._write(request, data, headers, md5, options)
        check_etag(context.at_destination(request.bucket, request.target), written, md5)
        return CopyOutcome(size=size, checksum=recorded or md5_checksum(md5))

    async def _read(self, request: CopyRequest) -> tuple[bytes, dict[str, str]]:
        """The source's bytes and headers, checked against what was planned."""
        bucket, key, etag = request.source_bucket, request.key, request.etag
        # The additional checksum, where there is one, comes with the answer's headers.
        asked = {"x-amz-checksum-mode": "ENABLED"}
        if etag:
            asked["If-Match"] = f'"{etag}"'
        source = await self.context.wire(self.context.source).get(bucket, key, asked)
        if source.status != 200:
            where = self.context.at_source(bucket, key)
            raise read_refused(source.status, source.body, where, request.size, etag)
        found_etag = normalize_etag(source.headers.get("etag", ""))
        check_found(
            self.context.at_source(bucket, key), request.size, etag, len(source.body), found_etag
        )
        return source.body, source.headers

    async def _write(
        self,
        request: CopyRequest,
        data: bytes,
        source_headers: dict[str, str],
        md5: str,
        options: CopyOptions,
    ) -> tuple[str, str]:
        """PUT the copy; its ETag, and the additional checksum recorded ("" for none).

        A multipart source's copy gets the MD5 of its bytes as ETag, not the source's:
        the source's ETag is stamped on it, as on a multipart copy, for a later sync.
        """
        context, bucket, target = self.context, request.bucket, request.target
        attributes = with_source_etag(
            metadata.header_attributes(source_headers), request.etag, in_parts=False
        )
        extras = await context.extras(request.source_bucket, request.key, source_headers)
        additional = extras.checksum
        if additional is not None and not additional.composite:
            await check_read(request.key, memoryview(data), additional)
            if context.checksums.wanted(bucket):
                send = partial(
                    context.checksums.put, bucket, target, memoryview(data), attributes,
                    extras, additional, options.storage_class,
                )  # fmt: skip
                return await anyio.to_thread.run_sync(send, limiter=context.threads)
        headers = metadata.put_headers(attributes, extras, source_headers)
        if options.storage_class:
            headers["x-amz-storage-class"] = options.storage_class
        headers["Content-MD5"] = base64.b64encode(bytes.fromhex(md5)).decode()
        written_to = await context.wire(context.destination).put(bucket, target, headers, data)
        return normalize_etag(written_to.headers.get("etag", "")), ""
