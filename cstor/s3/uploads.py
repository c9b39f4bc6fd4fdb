"""Opening, resuming and discarding a copy's multipart upload at the destination:
the bookkeeping both multipart strategies (`streamed_parts`, `server_parts`) share."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio

from cstor.domain.checksums import with_source_etag
from cstor.s3 import metadata
from cstor.s3.copy_context import CopyContext, CopyRequest
from cstor.s3.multipart import JournaledUpload, Upload, abort_strays
from cstor.s3.options import CopyHalted, CopyOptions


def create_arguments(
    attributes: dict[str, str], extras: metadata.Extras, etag: str, options: CopyOptions
) -> dict[str, Any]:
    """CreateMultipartUpload's arguments for a copy of a source with these attributes."""
    # Part sizes make multipart ETags incomparable: keep the source's with the copy.
    arguments = metadata.create_arguments(with_source_etag(attributes, etag, in_parts=True), extras)
    if options.storage_class:
        arguments["StorageClass"] = options.storage_class
    return arguments


class Uploads:
    """A copier's multipart uploads: opened, resumed from the journal, or aborted."""

    def __init__(self, context: CopyContext) -> None:
        self.context = context

    def _journaled(self, upload_key: str) -> bool:
        return self.context.journal is not None and bool(upload_key)

    async def open(
        self, request: CopyRequest, arguments: dict[str, Any], part_size: int, *, resume: bool
    ) -> tuple[Upload, dict[int, str]]:
        """The upload to send parts to, and the parts it already holds (by their MD5 hex)."""
        context, upload_key = self.context, request.upload_key
        journal = context.journal if self._journaled(upload_key) else None
        journaled = await journal.find(upload_key) if journal is not None else None
        if journaled is not None:
            found = await self._resumed(request, journaled, part_size, resume=resume)
            if found is not None:
                return found
        elif journal is not None:
            # Uploads a crash left open before they were journaled.
            await context.control(
                context.at_destination(request.bucket, request.target), "listing the uploads of",
                abort_strays, context.boto(context.destination), context.destination.url,
                request.bucket, request.target,
            )  # fmt: skip
        return await self._create(request, arguments, part_size), {}

    async def _resumed(
        self, request: CopyRequest, journaled: JournaledUpload, part_size: int, *, resume: bool
    ) -> tuple[Upload, dict[int, str]] | None:
        """The journaled upload and its finished parts if it can go on; else None,
        once it is aborted and forgotten."""
        context = self.context
        upload = Upload(
            context.boto(context.destination), context.http, context.destination.url,
            request.bucket, request.target, journaled.upload_id, journaled.checksum_algorithm,
        )  # fmt: skip
        same = (journaled.bucket, journaled.key, journaled.part_size, journaled.source_etag)
        held = None
        if resume and same == (request.bucket, request.target, part_size, request.etag):
            held = await context.control(
                upload.site, "listing the parts of",
                upload.finished_parts,
            )  # fmt: skip
        if held is not None:
            # A part counts when the store holds it with the MD5 the journal recorded.
            finished = {
                n: md5 for n, md5 in journaled.parts.items() if held.get(n, ("",))[0] == md5
            }
            return upload, finished
        await anyio.to_thread.run_sync(upload.abort)
        await self.forget(request.upload_key)
        return None

    async def _create(
        self, request: CopyRequest, arguments: dict[str, Any], part_size: int
    ) -> Upload:
        context = self.context
        started: list[Upload] = []

        def create() -> None:
            # Kept as soon as it exists, so a cancellation right after still aborts it.
            destination = context.boto(context.destination)
            upload = Upload.create(
                destination, context.http, context.destination.url,
                request.bucket, request.target, arguments,
            )  # fmt: skip
            started.append(upload)

        try:
            await anyio.to_thread.run_sync(create, limiter=context.threads)
            (upload,) = started
            if context.journal is not None and request.upload_key:
                record = JournaledUpload(
                    bucket=request.bucket,
                    key=request.target,
                    upload_id=upload.upload_id,
                    part_size=part_size,
                    source_etag=request.etag,
                    checksum_algorithm=upload.checksum_algorithm,
                )
                await context.journal.started(request.upload_key, record)
        except BaseException:
            if started:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(started[0].abort)
            raise
        return upload

    @contextlib.asynccontextmanager
    async def aborted_on_failure(
        self, upload: Upload, upload_key: str, *, keep_when_paused: bool
    ) -> AsyncIterator[None]:
        """Abort and forget `upload` if the block fails; forget it if it succeeds.

        With `keep_when_paused`, a pause keeps the upload and its journaled parts for
        the copy after the resume.
        """
        try:
            yield
        except CopyHalted as halted:
            if not (keep_when_paused and halted.paused):
                await self._abort(upload, upload_key)
            raise
        except BaseException:
            await self._abort(upload, upload_key)
            raise
        await self.forget(upload_key)

    async def _abort(self, upload: Upload, upload_key: str) -> None:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(upload.abort)
            await self.forget(upload_key)

    async def forget(self, upload_key: str) -> None:
        """Drop the journal's record of the upload named `upload_key`, if any."""
        if self.context.journal is not None and upload_key:
            await self.context.journal.forget(upload_key)

    async def discard(self, upload_key: str) -> bool:
        """Abort the upload the journal keeps under `upload_key`; whether there was one."""
        context = self.context
        journal = context.journal if self._journaled(upload_key) else None
        journaled = await journal.find(upload_key) if journal is not None else None
        if journaled is None:
            return False
        upload = Upload(
            context.boto(context.destination), context.http, context.destination.url,
            journaled.bucket, journaled.key, journaled.upload_id,
        )  # fmt: skip
        await anyio.to_thread.run_sync(upload.abort, limiter=context.threads)
        await self.forget(upload_key)
        return True
