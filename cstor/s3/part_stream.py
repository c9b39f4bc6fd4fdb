"""One GET stream of a source cut into the parts of a multipart upload, sent in
parallel while the stream goes on (the heart of `streamed_parts`)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import anyio

from cstor.domain.checksums import MIB, parts_in_flight_for
from cstor.s3 import md5
from cstor.s3.copy_context import CopyContext, CopyRequest
from cstor.s3.errors import S3Error, Site, gave_up
from cstor.s3.multipart import Upload
from cstor.s3.options import CopyHalted, CopyOptions
from cstor.s3.pacing import backoff
from cstor.s3.verify import check_size, grown

if TYPE_CHECKING:
    from cstor.s3.checksums import StreamChecksums
    from cstor.s3.source_stream import SourceStream

log = logging.getLogger(__name__)

STREAM_CHUNK = 4 * MIB
"""What a source stream hands over at once (its last piece less): few pieces per part."""

_Read = tuple[int, list[memoryview], int]
"""A part read and not yet sent: its number, its pieces, the memory reserved for it."""


class PartStream:
    """Cuts one GET stream of the source into parts and uploads those not in `md5s`.

    Each part holds its bytes (as the stream's own buffers, never joined) from
    its first byte until the store has it; parts already uploaded are skipped.
    Parts read are hashed in groups, side by side (`cstor.s3.md5`): a group goes
    once it has half the parts in flight, or before the copy would wait for
    anything but its own parts in flight (memory; the end; a pause).
    The stream's checksums see every byte first (parts skipped too). Each part to
    send waits for its bytes' share of the migration's bandwidth (`options.pace`)
    first, and none starts once the migration is paused or cancelled (CopyHalted,
    raised when the parts read and in flight are done).
    """

    def __init__(
        self,
        context: CopyContext,
        upload: Upload,
        request: CopyRequest,
        part_size: int,
        md5s: dict[int, str],
        *,
        max_in_flight: int,
        options: CopyOptions,
    ) -> None:
        self.context = context
        self.upload = upload
        self.request = request
        self.part_size = part_size
        self.md5s = md5s
        self.options = options
        self.in_flight = parts_in_flight_for(request.size, max_in_flight)
        # A throttled copy waits for its bandwidth anyway: its parts go as they are read.
        grouped = md5.side_by_side() and options.throttle is None
        self.group_size = max(1, min(md5.LANES, self.in_flight // 2)) if grouped else 1
        self.running: set[asyncio.Task[None]] = set()
        self.read: list[_Read] = []
        self.hashing: set[asyncio.Future[list[str]]] = set()
        self.reserved = 0
        """Memory held for the part being read."""
        self.number, self.pieces, self.held = 1, list[memoryview](), 0
        """The part being read, its pieces so far and their bytes."""

    @property
    def _source(self) -> Site:
        return self.context.at_source(self.request.source_bucket, self.request.key)

    async def run(self, source: SourceStream, digests: StreamChecksums | None) -> None:
        """Read `source` to its end, sending each part; wait for them all."""
        try:
            chunks = source.chunks(STREAM_CHUNK)
            async for chunk in digests.passing(chunks) if digests else chunks:
                await self._take(memoryview(chunk))
            size, part_size = self.request.size, self.part_size
            if (self.number - 1) * part_size < size:
                check_size(self._source, min(size, (self.number - 1) * part_size + self.held), size)
            self._send_read()
            await self._settle(0)
        finally:
            await self._clean_up()

    async def _take(self, view: memoryview) -> None:
        """Add one chunk of the stream to the parts it belongs to."""
        size, part_size = self.request.size, self.part_size
        while view:
            wanted = min(part_size, size - (self.number - 1) * part_size)
            if wanted <= 0:
                raise grown(self._source, size)
            skipped = self.number in self.md5s
            if not self.reserved and not skipped:
                await self._reserve(wanted)
            take = min(len(view), wanted - self.held)
            if not skipped:
                self.pieces.append(view[:take])
            self.held, view = self.held + take, view[take:]
            if self.held == wanted:
                self._part_read(skipped)

    def _part_read(self, skipped: bool) -> None:
        """The part being read is whole: queue it (unless it was there already)."""
        if not skipped:
            self.read.append((self.number, self.pieces, self.reserved))
            if len(self.read) >= self.group_size:
                self._send_read()
        self.number, self.pieces, self.held, self.reserved = self.number + 1, [], 0, 0

    async def _reserve(self, wanted: int) -> None:
        """Wait for room in flight, the part's bandwidth and its memory."""
        await self._settle(self.in_flight - 1)
        try:
            await self.options.pace(wanted)  # CopyHalted if paused or cancelled
        except CopyHalted:
            self._send_read()
            await self._settle(0)  # parts read and in flight finish, journaled
            raise
        if self.context.memory.would_wait(wanted):
            self._send_read()  # what it holds may be what others wait for
        self.reserved = await self.context.memory.acquire(wanted)

    def _send_read(self) -> None:
        """Hash the parts read, side by side, and upload each once its MD5 is known."""
        if not self.read:
            return
        group, self.read = self.read, []
        parts = [pieces for _, pieces, _ in group]
        hashed = asyncio.create_task(
            anyio.to_thread.run_sync(md5.md5s_of, parts, limiter=self.context.threads)
        )
        self.hashing.add(hashed)
        hashed.add_done_callback(self.hashing.discard)
        for index, (number, pieces, amount) in enumerate(group):
            self.running.add(asyncio.create_task(self._put(number, pieces, amount, hashed, index)))

    async def _settle(self, limit: int) -> None:
        """Until at most `limit` parts are read or in flight."""
        while len(self.running) + len(self.read) > limit:
            if not self.running:
                self._send_read()
                continue
            done, self.running = await asyncio.wait(
                self.running, return_when=asyncio.FIRST_EXCEPTION
            )
            for task in done:
                task.result()

    async def _put(
        self,
        number: int,
        pieces: list[memoryview],
        amount: int,
        hashed: asyncio.Future[list[str]],
        index: int,
    ) -> None:
        try:
            md5_hex = await self._put_part(number, pieces, (await asyncio.shield(hashed))[index])
        finally:
            with anyio.CancelScope(shield=True):
                await self.context.memory.release(amount)
        self.md5s[number] = md5_hex
        journal, upload_key = self.context.journal, self.request.upload_key
        if journal is not None and upload_key:
            await journal.part_done(upload_key, number, md5_hex)

    async def _put_part(self, number: int, pieces: list[memoryview], md5_hex: str) -> str:
        """Upload one part, trying again what is transient (then `gave_up`); its MD5 hex."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await anyio.to_thread.run_sync(
                    self.upload.put_part, number, pieces, md5_hex, limiter=self.context.threads
                )
            except S3Error as error:
                if not error.transient:
                    raise
                if attempt >= self.context.attempts:
                    raise gave_up(error, attempt) from error
                log.info("part %d of %r: %s; trying again", number, self.upload.key, error)
            await asyncio.sleep(backoff(attempt))

    async def _clean_up(self) -> None:
        """Give back the memory of parts not sent, and end the parts still running."""
        unsent = self.reserved + sum(amount for _, _, amount in self.read)
        if unsent:
            with anyio.CancelScope(shield=True):
                await self.context.memory.release(unsent)
        for task in self.running:
            task.cancel()
        if self.running or self.hashing:
            with anyio.CancelScope(shield=True):
                await asyncio.wait(self.running | self.hashing)
